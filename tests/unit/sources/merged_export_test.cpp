#include "recis_convert/sources/merged_export.h"

#include <gtest/gtest.h>

#include "recis_convert/common/checksum.h"
#include "recis_convert/sources/delta_rows.h"
#include "recis_convert/transforms/job_transforms.h"
#include "test_files.h"

namespace recis_convert {
namespace {

// An export of table "user" (id, embedding [n, 2] F32) in two parts, each in its own file, plus a dense scalar
// "sparse_adamw_step^ " in file 0. Row of id i: embedding {i, -i}.
struct Part {
  std::vector<int64_t> ids;
};
void write_export(const std::string& dir, const Part& p0, const Part& p1, int64_t scalar) {
  auto rows = [](const std::vector<int64_t>& ids, float sign) {
    std::vector<float> out;
    for (int64_t id : ids) {
      out.push_back(sign * static_cast<float>(id));
      out.push_back(-sign * static_cast<float>(id));
    }
    return testing::raw_bytes(out);
  };
  const float sign = scalar == 1 ? 1.0f : 10.0f;  // a delta's rows differ from the base's
  testing::write_file(dir + "/model-000000-of-000002.safetensors",
                      testing::recis_file({{"user.id/part_0_2", "I64", {p0.ids.size()}, testing::raw_bytes(p0.ids)},
                                           {"user.embedding/part_0_2", "F32", {p0.ids.size(), 2}, rows(p0.ids, sign)},
                                           {"sparse_adamw_step^ ", "I64", {1}, testing::raw_bytes(std::vector<int64_t>{scalar})}}));
  testing::write_file(dir + "/model-000001-of-000002.safetensors",
                      testing::recis_file({{"user.id/part_1_2", "I64", {p1.ids.size()}, testing::raw_bytes(p1.ids)},
                                           {"user.embedding/part_1_2", "F32", {p1.ids.size(), 2}, rows(p1.ids, sign)}}));
  testing::write_file(dir + "/index",
                      "{\"block_index\":{\"sparse_adamw_step^ \":0,\"user.embedding/part_0_2\":0,"
                      "\"user.embedding/part_1_2\":1,\"user.id/part_0_2\":0,\"user.id/part_1_2\":1},"
                      "\"file_index\":{\"model-000000-of-000002.safetensors\":0,\"model-000001-of-000002.safetensors\":1}}");
  testing::write_file(dir + "/tensorkey.json",
                      "{\"user.embedding/part_0_2\": \"user@embedding^00000@32768@65536\","
                      "\"user.embedding/part_1_2\": \"user@embedding^32768@65536@65536\","
                      "\"user.id/part_0_2\": \"user@id^00000@32768@65536\","
                      "\"user.id/part_1_2\": \"user@id^32768@65536@65536\"}");
}

// Writes base.files[file] merged with `merged` into `out_dir`, as merge does: the export's file road.
Result<FileResult> write_merged(const CheckpointListing& base, MergedExport& merged, size_t file,
                                const std::string& out_dir, size_t buffer_bytes = 8u << 20) {
  CopyEngine engine(buffer_bytes, CopyPath::kBuffered, 0);
  FileExportSettings settings;
  settings.staging_dir = out_dir;
  settings.tensor_rows = [&merged](const TensorOfFile& tensor) { return merged.rows_of(tensor); };
  return export_data_file(base, base.files[file], make_row_transforms(false, {}, EmbeddingDTypes{}), engine, settings);
}

TEST(MergedExportTest, DeltaRowsReplaceTheirIdsAndNewIdsJoinTheirSlicesPart) {
  testing::TempDir base_dir, delta_dir, out_dir;
  // part 0 holds ids with id % 65536 < 32768, part 1 the rest
  write_export(base_dir.path(), Part{{1, 2, 3}}, Part{{40000, 40001}}, 1);
  write_export(delta_dir.path(), Part{{2, 5}}, Part{{40001, 65536 + 40002}}, 7);  // 2, 40001 change; 5, 105538 new
  auto base = discover_checkpoint(base_dir.path());
  auto delta = discover_checkpoint(delta_dir.path());
  ASSERT_TRUE(base && delta);
  auto deltas = DeltaRows::read({delta.value()});
  ASSERT_TRUE(deltas) << deltas.error().describe();
  EXPECT_EQ(deltas.value().rows(), 4u);
  MergedExport merged(base.value(), deltas.value(), MergeSettings{});
  for (size_t f = 0; f < 2; ++f) {
    auto written = write_merged(base.value(), merged, f, out_dir.path(), 16);  // row by row
    ASSERT_TRUE(written) << written.error().describe();
    const std::string path = out_dir.file(written.value().name);
    const std::string bytes = testing::read_file(path);
    EXPECT_EQ(written.value().output_bytes, bytes.size());
    EXPECT_EQ(written.value().checksum, Checksum::of(bytes.data(), bytes.size()));
  }
  // base rows keep the base's values (sign 1), delta rows take the delta's (sign 10); new ids come last
  auto row = [](int64_t id, float sign) { return std::vector<float>{sign * id, -sign * id}; };
  std::vector<float> part0, part1;
  for (auto [id, sign] : std::vector<std::pair<int64_t, float>>{{1, 1}, {2, 10}, {3, 1}, {5, 10}}) {
    for (float v : row(id, sign)) part0.push_back(v);
  }
  for (auto [id, sign] : std::vector<std::pair<int64_t, float>>{{40000, 1}, {40001, 10}, {65536 + 40002, 10}}) {
    for (float v : row(id, sign)) part1.push_back(v);
  }
  const std::string file0 = testing::recis_file(
      {{"user.id/part_0_2", "I64", {4}, testing::raw_bytes(std::vector<int64_t>{1, 2, 3, 5})},
       {"user.embedding/part_0_2", "F32", {4, 2}, testing::raw_bytes(part0)},
       {"sparse_adamw_step^ ", "I64", {1}, testing::raw_bytes(std::vector<int64_t>{7})}});  // the delta's scalar
  const std::string file1 = testing::recis_file(
      {{"user.id/part_1_2", "I64", {3}, testing::raw_bytes(std::vector<int64_t>{40000, 40001, 65536 + 40002})},
       {"user.embedding/part_1_2", "F32", {3, 2}, testing::raw_bytes(part1)}});
  EXPECT_EQ(testing::read_file(out_dir.file("model-000000-of-000002.safetensors")), file0);
  EXPECT_EQ(testing::read_file(out_dir.file("model-000001-of-000002.safetensors")), file1);
}

TEST(MergedExportTest, ADeltaRowOfAnotherWidthIsBadInputNamingTheTensor) {
  testing::TempDir base_dir, delta_dir, out_dir;
  write_export(base_dir.path(), Part{{1}}, Part{{40000}}, 1);
  write_export(delta_dir.path(), Part{{1}}, Part{{}}, 7);
  // the delta's embedding of part 0 becomes [1, 4]
  testing::write_file(delta_dir.path() + "/model-000000-of-000002.safetensors",
                      testing::recis_file({{"user.id/part_0_2", "I64", {1}, testing::raw_bytes(std::vector<int64_t>{1})},
                                           {"user.embedding/part_0_2", "F32", {1, 4}, std::string(16, '\0')},
                                           {"sparse_adamw_step^ ", "I64", {1}, std::string(8, '\0')}}));
  auto base = discover_checkpoint(base_dir.path());
  auto deltas = DeltaRows::read({discover_checkpoint(delta_dir.path()).value()});
  ASSERT_TRUE(base && deltas);
  MergedExport merged(base.value(), deltas.value(), MergeSettings{});
  auto written = write_merged(base.value(), merged, 0, out_dir.path());
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().code, ExitCode::kBadInput);
  EXPECT_NE(written.error().describe().find("\"user.embedding/part_0_2\" has rows of 16 bytes, the base's have 8"),
            std::string::npos)
      << written.error().describe();
}

}  // namespace
}  // namespace recis_convert
