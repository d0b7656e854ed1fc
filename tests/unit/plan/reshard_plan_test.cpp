#include "recis_convert/plan/reshard_plan.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "message_round_trip.h"
#include "recis_convert/mpi/job_messages.h"

namespace recis_convert {
namespace {

DecisionColumn ids_of(const std::string& table, const std::string& part, uint64_t rows) {
  return DecisionColumn{"/c/" + part, table + ".id/" + part, 64, rows, DType::kI64, 1};
}

KeptSlot slot(const std::string& table, const std::string& part, const std::string& name, uint64_t rows,
              uint64_t dim) {
  RowLayout layout = name == "id" ? RowLayout{DType::kI64, "I64", {}, ""} : RowLayout{DType::kF32, "F32", {dim}, ""};
  return KeptSlot{PartId{table, part}, name, table + "." + name + "/" + part, "/c/" + part, rows, layout};
}

// Table "t" in two source parts (part_1_2 listed first: the plan orders them by slice), three target parts.
ReshardInput two_parts_into_three() {
  ReshardInput in;
  in.count = 3;
  in.parts = {PartTargets{PartId{"t", "part_1_2"}, ids_of("t", "part_1_2", 5), {{1, 1}, {2, 4}}},
              PartTargets{PartId{"t", "part_0_2"}, ids_of("t", "part_0_2", 4), {{0, 3}, {1, 1}}}};
  for (const char* part : {"part_1_2", "part_0_2"}) {
    const uint64_t rows = std::string(part) == "part_1_2" ? 5 : 4;
    in.slots.push_back(slot("t", part, "id", rows, 0));
    in.slots.push_back(slot("t", part, "embedding", rows, 2));
  }
  TensorInfo scalar{"sparse_adamw_step^ ", DType::kI64, "I64", {1}, 0, 8};
  in.dense.push_back(KeptDense{scalar, "/c/part_0_2"});
  return in;
}

TEST(ReshardPlanTest, FileNamesAreRecisNames) {
  EXPECT_EQ(reshard_file_name(3, 7), "model-000003-of-000007.safetensors");
  EXPECT_EQ(reshard_file_name(0, 65536), "model-000000-of-065536.safetensors");
}

TEST(ReshardPlanTest, EveryFileHoldsItsPartOfEveryTableAndFileZeroTheDenseTensors) {
  auto layout = plan_reshard(two_parts_into_three(), {}, "/c");
  ASSERT_TRUE(layout) << layout.error().describe();
  const ReshardLayout& l = layout.value();
  ASSERT_EQ(l.files.size(), 3u);
  std::vector<std::string> names;
  for (const TensorInfo& t : l.files[0].tensors) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"sparse_adamw_step^ ", "t.embedding/part_0_3", "t.id/part_0_3"}));
  // rows per target: 3, 1 + 1, 4; back to back, sorted by name
  EXPECT_EQ(l.files[1].tensors[0].shape, (std::vector<uint64_t>{2, 2}));
  EXPECT_EQ(l.files[1].tensors[1].begin, 16u);
  EXPECT_EQ(l.files[2].tensors[1].shape, (std::vector<uint64_t>{4}));
  EXPECT_EQ(l.files[2].bytes(), l.files[2].preamble.size() + 4 * 8 + 4 * 8);
  EXPECT_EQ(l.logical.at("t.id/part_1_3"), "t@id^21846@43691@65536");
}

TEST(ReshardPlanTest, SourcePartsFillATargetInSliceOrder) {
  auto layout = plan_reshard(two_parts_into_three(), {}, "/c");
  ASSERT_TRUE(layout);
  const ReshardLayout& l = layout.value();
  // target 1 gets one row of part_0_2 first (slice 0), then one of part_1_2
  const uint64_t base = l.files[1].preamble.size() + l.files[1].tensors[0].begin;  // t.embedding/part_1_3
  const TensorPlacement& first = l.sparse.at("t.embedding/part_0_2");
  const TensorPlacement& second = l.sparse.at("t.embedding/part_1_2");
  ASSERT_EQ(first.targets.size(), 2u);
  EXPECT_EQ(first.targets[1].target, 1u);
  EXPECT_EQ(first.targets[1].offset, base);
  EXPECT_EQ(second.targets[0].target, 1u);
  EXPECT_EQ(second.targets[0].offset, base + 8);  // after one F32 [2] row
  EXPECT_EQ(second.ids.tensor, "t.id/part_1_2");
  EXPECT_EQ(l.dense.at("sparse_adamw_step^ "), l.files[0].preamble.size());
}

TEST(ReshardPlanTest, ATableWithNoRowsStillHasEveryPart) {
  ReshardInput in;
  in.count = 2;
  in.parts = {PartTargets{PartId{"empty", "part_0_1"}, ids_of("empty", "part_0_1", 0), {}}};
  in.slots = {slot("empty", "part_0_1", "id", 0, 0)};
  auto layout = plan_reshard(in, {}, "/c");
  ASSERT_TRUE(layout);
  for (const ReshardFile& f : layout.value().files) {
    ASSERT_EQ(f.tensors.size(), 1u);
    EXPECT_EQ(f.tensors[0].shape, (std::vector<uint64_t>{0}));
  }
}

TEST(ReshardPlanTest, EvictedRowsAreNotRoutedAndTheCountsMustAddUp) {
  ReshardInput in = two_parts_into_three();
  // part_0_2 keeps all 4 rows by default; say it keeps 3: its targets (3 + 1) no longer add up
  auto bad = plan_reshard(in, {{PartId{"t", "part_0_2"}, 3}}, "/c");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ExitCode::kBadInput);
  EXPECT_NE(bad.error().describe().find("t.id/part_0_2"), std::string::npos);
  in.parts[1].targets = {{0, 2}, {1, 1}};
  EXPECT_TRUE(plan_reshard(in, {{PartId{"t", "part_0_2"}, 3}}, "/c"));
}

TEST(ReshardPlanTest, DisagreeingPartsAreBadInputNamingTheTensor) {
  ReshardInput rows = two_parts_into_three();
  rows.slots[1].rows = 4;  // t.embedding/part_1_2 against its id's 5
  auto bad = plan_reshard(rows, {}, "/c");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().describe(),
            "/c/part_1_2: tensor \"t.embedding/part_1_2\" has 4 rows but its part's \"t.id/part_1_2\" has 5");

  ReshardInput layouts = two_parts_into_three();
  layouts.slots[3].output.row_shape = {3};
  auto other = plan_reshard(layouts, {}, "/c");
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().describe().find("another part of table \"t\" has F32 [N, 2]"), std::string::npos);

  ReshardInput missing = two_parts_into_three();
  missing.slots.pop_back();  // part_0_2 has no embedding
  auto gap = plan_reshard(missing, {}, "/c");
  ASSERT_FALSE(gap);
  EXPECT_EQ(gap.error().describe(), "/c: table \"t\" part part_0_2 has no embedding tensor, which its other parts have");
}

TEST(ReshardPlanTest, TheCatalogPlacesEveryOutputBlock) {
  auto layout = plan_reshard(two_parts_into_three(), {}, "/c");
  ASSERT_TRUE(layout);
  BlockCatalog catalog = reshard_catalog(layout.value());
  EXPECT_EQ(catalog.size(), 7u);
  auto block = catalog.find("t.embedding/part_2_3");
  ASSERT_TRUE(block);
  EXPECT_EQ(block->file, 2u);
  EXPECT_EQ(block->logical, "t@embedding^43691@65536@65536");
  EXPECT_EQ(catalog.find("sparse_adamw_step^ ")->logical, "");
}

TEST(ReshardPlanTest, ShareAndCountsSurviveTheirMessages) {
  auto layout = plan_reshard(two_parts_into_three(), {}, "/c");
  ASSERT_TRUE(layout);
  ReshardShare share{3, layout.value().sparse, layout.value().dense, layout.value().rows};
  auto back = testing::round_trip(share);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(back.value().sparse.at("t.id/part_1_2").targets[1].offset,
            share.sparse.at("t.id/part_1_2").targets[1].offset);
  EXPECT_EQ(back.value().sparse.at("t.id/part_1_2").targets[0].row, 1u);  // after part_0_2's row in target 1
  EXPECT_EQ(back.value().table_rows.at("t"), (std::vector<uint64_t>{3, 2, 4}));
  RankReshardCounts counts{std::nullopt, two_parts_into_three(), {PartCount{PartId{"t", "part_0_2"}, 9, 7}}};
  auto counted = testing::round_trip(counts);
  ASSERT_TRUE(counted);
  EXPECT_EQ(counted.value().found.slots[1].output.row_shape, (std::vector<uint64_t>{2}));
  EXPECT_EQ(counted.value().found.parts[0].targets[1].rows, 4u);
  ASSERT_EQ(counted.value().kept.size(), 1u);
  EXPECT_EQ(counted.value().kept[0].kept, 7u);
}

}  // namespace
}  // namespace recis_convert
