#include "recis_convert/metadata/metadata_stage.h"

#include <gtest/gtest.h>

#include "block_catalogs.h"

namespace recis_convert {
namespace {

TensorInfo tensor(const std::string& name, const std::string& dtype, std::vector<uint64_t> shape, uint64_t bytes) {
  TensorInfo t;
  t.name = name;
  t.dtype_spelling = dtype;
  t.dtype = *parse_dtype(dtype);
  t.shape = std::move(shape);
  t.end = bytes;
  return t;
}

SourceDescription two_file_source() {
  SourceDescription s;
  s.listing.ckpt_dir = "/ckpt/ckpt_1";
  s.listing.files = {{"model-000000-of-000002.safetensors", 100}, {"model-000001-of-000002.safetensors", 200}};
  s.listing.blocks = testing::catalog_of({{"user.id/part_0_1", 0, "user@id^00000@65536@65536"},
                                          {"user.embedding/part_0_1", 1, "user@embedding^00000@65536@65536"}});
  return s;
}

std::vector<FileResult> results() {
  FileResult b{"model-000001-of-000002.safetensors", 200, true, 150, 7, {}, {}};
  b.kept = {tensor("user.embedding/part_0_1", "F32", {3, 2}, 24)};
  b.dropped = {tensor("sparse_adamw_step^ ", "I64", {1}, 8)};
  FileResult a{"model-000000-of-000002.safetensors", 100, true, 90, 9, {}, {}};
  a.kept = {tensor("user.id/part_0_1", "I64", {3}, 24)};
  return {b, a};  // as gathered: not in name order
}

TEST(MetadataStageTest, SummarySortsFilesAndCountsBytes) {
  JobOptions o;
  const SourceDescription source = two_file_source();  // the summary's logical names point into its catalog
  auto summary = summarize_export(o, source, results(), {}, Log(0, true, false));
  ASSERT_TRUE(summary) << summary.error().describe();
  EXPECT_EQ(summary.value().files[0].name, "model-000000-of-000002.safetensors");
  EXPECT_EQ(summary.value().bytes_in, 300u);
  EXPECT_EQ(summary.value().bytes_out, 240u);
  EXPECT_EQ(summary.value().bytes_dropped, 8u);
  ASSERT_EQ(summary.value().tables.size(), 1u);
  EXPECT_EQ(summary.value().tables[0].rows, 3u);
  // The kept tensors in key order, pointing into the summary's own files after every move on the way out.
  const ExportSummary moved = std::move(summary).value();
  ASSERT_EQ(moved.kept.size(), 2u);
  EXPECT_EQ(moved.kept[0].tensor, &moved.files[1].kept[0]);
  EXPECT_EQ(moved.kept[0].logical, "user@embedding^00000@65536@65536");
  EXPECT_EQ(moved.kept[1].tensor->name, "user.id/part_0_1");
  EXPECT_EQ(moved.kept[1].file, &moved.files[0]);
}

TEST(MetadataStageTest, ABlockTheIndexPlacesButNoFileHeldIsBadInputNamingTheFile) {
  JobOptions o;
  SourceDescription source = two_file_source();
  source.listing.blocks = testing::with_block(source.listing.blocks, "user.step_filter/part_0_1", 1, "");
  auto summary = summarize_export(o, source, results(), {}, Log(0, true, false));
  ASSERT_FALSE(summary);
  EXPECT_EQ(summary.error().code, ExitCode::kBadInput);
  EXPECT_EQ(summary.error().file, "/ckpt/ckpt_1/model-000001-of-000002.safetensors");
  EXPECT_NE(summary.error().message.find("user.step_filter/part_0_1"), std::string::npos);
}

}  // namespace
}  // namespace recis_convert
