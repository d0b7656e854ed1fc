#include "recis_convert/pipeline/row_table_stage.h"
#include "recis_convert/sinks/row_table_files.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <string>
#include <tuple>
#include <vector>

#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/safetensors.h"
#include "recis_convert/transforms/embedding_codecs.h"
#include "recis_convert/sources/hugectr_export.h"
#include "test_files.h"

namespace recis_convert {
namespace {

// One localized table of 11 rows: key r * 10000, vector [r, -r] (L2 norm r * sqrt(2)), slot id r % 3.
class RowTableStageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<int64_t> keys;
    for (int r = 0; r < 11; ++r) keys.push_back(r * 10000);
    const std::string table = testing::write_localized_hugectr_model(dir_.path(), keys);
    ::mkdir(dir_.file("staging").c_str(), 0777);
    o_.source = SourceKind::kHugectr;
    o_.graph = dir_.file("g.json");
    o_.sparse = {table};
    o_.buffer_mib = 1;
    o_.fsync = false;
  }

  // Plans on one rank and writes as `ranks` ranks would (each its range), into the staging directory.
  RowTablePlan run() {
    auto model = describe_hugectr_model(o_, RowTransformChain());
    EXPECT_TRUE(model) << model.error().describe();
    model_ = std::move(model).value();
    SerialComm comm;
    auto plan = plan_row_table_ranges(o_, model_, dir_.file("staging"), comm);
    EXPECT_TRUE(plan) << plan.error().describe();
    auto written = write_row_table_ranges(o_, model_, plan.value(), RowTransformChain(), dir_.file("staging"), 0, 1, nullptr, log_, {});
    EXPECT_TRUE(written) << written.error().describe();
    return std::move(plan).value();
  }

  // The file's tensors as (name, bytes), in header order.
  std::vector<std::pair<std::string, std::string>> tensors_of(const std::string& name) {
    const std::string path = dir_.file("staging/" + name);
    const std::string bytes = testing::read_file(path);
    FileDescriptor fd(::open(path.c_str(), O_RDONLY));
    auto header = read_safetensors_header(fd.get(), bytes.size(), path);
    EXPECT_TRUE(header) << header.error().describe();
    std::vector<std::pair<std::string, std::string>> out;
    for (const TensorInfo& t : header.value().tensors) {
      out.emplace_back(t.name, bytes.substr(header.value().data_start() + t.begin, t.nbytes()));
    }
    return out;
  }

  static std::string rows_of(const std::vector<int>& rows, const char* what) {
    std::vector<int64_t> keys;
    std::vector<float> vectors;
    std::vector<uint64_t> slots;
    for (int r : rows) {
      keys.push_back(r * 10000);
      vectors.push_back(static_cast<float>(r));
      vectors.push_back(-static_cast<float>(r));
      slots.push_back(static_cast<uint64_t>(r % 3));
    }
    const std::string w(what);
    return w == "id" ? testing::raw_bytes(keys) : w == "embedding" ? testing::raw_bytes(vectors) : testing::raw_bytes(slots);
  }

  testing::TempDir dir_;
  JobOptions o_;
  RowTables model_;
  Log log_{0, true, false};
};

TEST_F(RowTableStageTest, EvictionKeepsTheRowsWhoseNormIsNotBelowTheThreshold) {
  o_.eviction.l2_below = 4.0f;  // 2 * sqrt(2) < 4 <= 3 * sqrt(2)
  RowTablePlan plan = run();
  EXPECT_EQ(plan.tables.at("user").evicted, 3u);
  EXPECT_EQ(plan.tables.at("user").rows, 11u);
  const std::vector<int> kept = {3, 4, 5, 6, 7, 8, 9, 10};
  auto tensors = tensors_of("model-000000-of-000001.safetensors");
  ASSERT_EQ(tensors.size(), 3u);
  EXPECT_EQ(tensors[0], (std::pair<std::string, std::string>{"user.id/part_0_1", rows_of(kept, "id")}));
  EXPECT_EQ(tensors[1].second, rows_of(kept, "embedding"));
  EXPECT_EQ(tensors[2].second, rows_of(kept, "slot_id"));
}

TEST_F(RowTableStageTest, ReshardSendsEachKeyToItsSliceInRowOrder) {
  o_.eviction.l2_below = 4.0f;
  o_.reshard = 2;  // residues of 40000, 50000, 60000 and 100000 lie in [32768, 65536)
  RowTablePlan plan = run();
  ASSERT_TRUE(plan.layout);
  auto first = tensors_of("model-000000-of-000002.safetensors");
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[0], (std::pair<std::string, std::string>{"user.embedding/part_0_2", rows_of({3, 7, 8, 9}, "embedding")}));
  EXPECT_EQ(first[1].second, rows_of({3, 7, 8, 9}, "id"));
  auto second = tensors_of("model-000001-of-000002.safetensors");
  EXPECT_EQ(second[1], (std::pair<std::string, std::string>{"user.id/part_1_2", rows_of({4, 5, 6, 10}, "id")}));
  EXPECT_EQ(second[2].second, rows_of({4, 5, 6, 10}, "slot_id"));
}

TEST_F(RowTableStageTest, OnePlanPlacesTheSourcePartsOfATableInPartOrder) {
  auto model = describe_hugectr_model(o_, RowTransformChain());
  ASSERT_TRUE(model) << model.error().describe();
  // two ranges of the table (as two ranks' shares), counted: 2 + 3 rows to target 0, 4 + 2 to target 1
  std::vector<RowTablePart> parts;
  for (const auto& [part, rows, to0, to1] : {std::tuple{"part_1_2", 5u, 3u, 2u}, std::tuple{"part_0_2", 6u, 2u, 4u}}) {
    parts.push_back(RowTablePart{part, DecisionColumn{"keys", std::string("user.id/") + part, 0, rows},
                                      RowRangeCount{0, rows, rows, {TargetRows{0, to0}, TargetRows{1, to1}}}});
  }
  auto layout = plan_row_table_reshard(2, model.value(), parts);
  ASSERT_TRUE(layout) << layout.error().describe();
  EXPECT_EQ(layout.value().rows.at("user"), (std::vector<uint64_t>{5, 6}));
  const auto& later = layout.value().sparse.at("user.embedding/part_1_2").targets;  // after part_0_2's rows
  ASSERT_EQ(later.size(), 2u);
  EXPECT_EQ(later[0].row, 2u);
  EXPECT_EQ(later[1].row, 4u);
  EXPECT_EQ(layout.value().sparse.at("user.id/part_0_2").targets[0].row, 0u);
  parts[0].count.targets[0].rows = 4;  // the targets no longer add up to the kept rows: bad input
  EXPECT_FALSE(plan_row_table_reshard(2, model.value(), parts));
}

// --evict-l2-below decides on a table's own dtype as on its rows widened to float32 (exactly): the same rows stay.
TEST(EmbeddingNormFilterTest, DecidesOnF16AndBf16RowsAsOnTheirFloat32Values) {
  const uint64_t dim = 3;
  const std::vector<float> rows = {0.5f, 0.5f, 0.5f, 1.0f, 0.0f, 0.0f, 0.25f, -0.25f, 0.0f, 2.0f, -2.0f, 1.0f};
  const uint64_t n = rows.size() / dim;
  std::vector<uint16_t> f16, bf16;
  for (float v : rows) {
    f16.push_back(float_to_half(v));  // every value is exact in both
    bf16.push_back(float_to_bfloat16(v));
  }
  for (float below : {0.0f, 0.8f, 0.866f, 1.0f, 3.1f}) {
    std::vector<unsigned char> by_f32(n), by_f16(n), by_bf16(n);
    const uint64_t kept = embedding_norm_filter(DType::kF32, dim, below)
                              .decide(reinterpret_cast<const unsigned char*>(rows.data()), n, by_f32.data());
    EXPECT_EQ(embedding_norm_filter(DType::kF16, dim, below)
                  .decide(reinterpret_cast<const unsigned char*>(f16.data()), n, by_f16.data()), kept);
    EXPECT_EQ(embedding_norm_filter(DType::kBF16, dim, below)
                  .decide(reinterpret_cast<const unsigned char*>(bf16.data()), n, by_bf16.data()), kept);
    EXPECT_EQ(by_f16, by_f32) << below;
    EXPECT_EQ(by_bf16, by_f32) << below;
  }
  std::vector<unsigned char> keep(n);
  EXPECT_EQ(embedding_norm_filter(DType::kF16, dim, 1.0f)
                .decide(reinterpret_cast<const unsigned char*>(f16.data()), n, keep.data()), 2u);  // 1.0 and 3.0 stay
  EXPECT_EQ(keep, (std::vector<unsigned char>{0, 1, 0, 1}));
}

}  // namespace
}  // namespace recis_convert
