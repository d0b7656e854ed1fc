#include "recis_convert/sinks/file_layout.h"

#include <gtest/gtest.h>

namespace recis_convert {
namespace {

TensorInfo tensor(const std::string& name, uint64_t begin, uint64_t end) {
  TensorInfo t;
  t.name = name;
  t.dtype = DType::kU8;
  t.dtype_spelling = "U8";
  t.shape = {end - begin};
  t.begin = begin;
  t.end = end;
  return t;
}

TEST(FileLayoutTest, FilteredPlanPacksKeptTensorsAndMergesAdjacentRanges) {
  SafetensorsHeader header;
  header.header_bytes = 88;  // data starts at 96
  header.tensors = {tensor("a", 0, 10), tensor("b", 10, 30), tensor("c", 30, 31), tensor("d", 31, 40)};
  header.file_size = 96 + 40;
  FileLayout plan = lay_out_filtered_file(header, {true, true, false, true});
  ASSERT_EQ(plan.kept.size(), 3u);
  EXPECT_EQ(plan.kept[1].name, "b");
  EXPECT_EQ(plan.kept[2].begin, 30u);
  EXPECT_EQ(plan.kept[2].end, 39u);
  ASSERT_EQ(plan.dropped.size(), 1u);
  EXPECT_EQ(plan.dropped[0].begin, 30u);  // source offsets
  ASSERT_EQ(plan.ranges.size(), 2u);
  EXPECT_EQ(plan.ranges[0].offset, 96u);
  EXPECT_EQ(plan.ranges[0].length, 30u);
  EXPECT_EQ(plan.ranges[1].offset, 96u + 31);
  EXPECT_EQ(plan.ranges[1].length, 9u);
  EXPECT_EQ(plan.preamble.size() % 8, 0u);
  EXPECT_EQ(plan.output_bytes(), plan.preamble.size() + 39);
}

TEST(FileLayoutTest, PlanWithNothingKeptHasNoTensors) {
  SafetensorsHeader header;
  header.tensors = {tensor("a", 0, 10)};
  FileLayout plan = lay_out_filtered_file(header, {false});
  EXPECT_TRUE(plan.kept.empty());
  EXPECT_TRUE(plan.ranges.empty());
}

TEST(FileLayoutTest, VerbatimPlanCopiesTheWholeFile) {
  SafetensorsHeader header;
  header.file_size = 1234;
  header.tensors = {tensor("a", 0, 10)};
  FileLayout plan = lay_out_verbatim_copy(header);
  EXPECT_TRUE(plan.preamble.empty());
  ASSERT_EQ(plan.ranges.size(), 1u);
  EXPECT_EQ(plan.ranges[0].length, 1234u);
  EXPECT_EQ(plan.output_bytes(), 1234u);
}

}  // namespace
}  // namespace recis_convert
