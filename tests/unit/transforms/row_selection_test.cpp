#include "recis_convert/transforms/row_selection.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "recis_convert/transforms/row_eviction.h"
#include "test_files.h"

namespace recis_convert {
namespace {


TEST(RowSelectionTest, StepFilterColumnDecidesChunkByChunk) {
  testing::TempDir dir;
  const uint64_t rows = 300000;  // more than one chunk of 131072 rows
  std::vector<int64_t> steps(rows);
  uint64_t expected = 0;
  for (uint64_t i = 0; i < rows; ++i) {
    steps[i] = static_cast<int64_t>((i * 7919) % 1001);
    expected += kept_by_step(1000, steps[i], 250) ? 1 : 0;
  }
  testing::write_file(dir.file("a"), std::string(16, 'x') + testing::raw_bytes(steps));  // the column at offset 16
  PartDecision d;
  d.step_filter = DecisionColumn{dir.file("a"), "t.step_filter/part_0_1", 16, rows, DType::kI64, 1};
  d.global_step = 1000;
  d.older_than = 250;
  auto selector = RowSelector::open(d);
  ASSERT_TRUE(selector) << selector.error().describe();
  EXPECT_EQ(selector.value().chunk_rows(), 131072u);
  auto kept = selector.value().count_kept();
  ASSERT_TRUE(kept) << kept.error().describe();
  EXPECT_EQ(kept.value(), expected);
  std::vector<unsigned char> keep(10);
  auto some = selector.value().decide(5, 10, keep.data());
  ASSERT_TRUE(some);
  for (uint64_t i = 0; i < 10; ++i) EXPECT_EQ(keep[i], kept_by_step(1000, steps[5 + i], 250) ? 1 : 0) << i;
}

TEST(RowSelectionTest, TheCountPassRecordsItsDecisionsForTheWritePass) {
  testing::TempDir dir;
  const uint64_t rows = 200000;
  std::vector<int64_t> steps(rows);
  for (uint64_t i = 0; i < rows; ++i) steps[i] = static_cast<int64_t>((i * 7919) % 300);
  testing::write_file(dir.file("a"), testing::raw_bytes(steps));
  PartSelection selection;
  selection.decision.step_filter = DecisionColumn{dir.file("a"), "t.step_filter/part_0_1", 0, rows, DType::kI64, 1};
  selection.decision.changed_after = 250;
  auto counter = RowSelector::open(selection.decision);
  ASSERT_TRUE(counter);
  auto record = KeptRowBitmapWriter::create(dir.file("bits"));
  ASSERT_TRUE(record);
  auto kept = counter.value().count_kept(&record.value());
  ASSERT_TRUE(kept) << kept.error().describe();
  selection.rows = rows;
  selection.kept = kept.value();
  selection.kept_rows_file = dir.file("bits");
  testing::write_file(dir.file("a"), "");  // the write pass no longer reads the column
  auto writer = RowSelector::open(selection);
  ASSERT_TRUE(writer) << writer.error().describe();
  std::vector<unsigned char> keep(1000);
  auto some = writer.value().decide(150001, 1000, keep.data());
  ASSERT_TRUE(some) << some.error().describe();
  for (uint64_t i = 0; i < 1000; ++i) EXPECT_EQ(keep[i], steps[150001 + i] > 250 ? 1 : 0) << i;
  auto recounted = writer.value().count_kept();
  ASSERT_TRUE(recounted);
  EXPECT_EQ(recounted.value(), selection.kept);
}

TEST(RowSelectionTest, BothRulesMustKeepARowAndTheColumnsMayLieInTwoFiles) {
  testing::TempDir dir;
  const std::vector<int64_t> steps = {100, 10, 100, 10};
  const std::vector<float> embedding = {3, 4, 0.1f, 0, 3, 4, 0, 0.2f};  // norms 5, 0.1, 5, 0.2
  testing::write_file(dir.file("steps"), testing::raw_bytes(steps));
  testing::write_file(dir.file("rows"), std::string(8, '\0') + testing::raw_bytes(embedding));
  PartDecision d;
  d.step_filter = DecisionColumn{dir.file("steps"), "t.step_filter/part_0_1", 0, 4, DType::kI64, 1};
  d.global_step = 100;
  d.older_than = 50;
  d.embedding = DecisionColumn{dir.file("rows"), "t.embedding/part_0_1", 8, 4, DType::kF32, 2};
  d.l2_below = 1.0f;
  auto selector = RowSelector::open(d);
  ASSERT_TRUE(selector) << selector.error().describe();
  std::vector<unsigned char> keep(4);
  auto kept = selector.value().decide(0, 4, keep.data());
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept.value(), 2u);
  EXPECT_EQ(keep, (std::vector<unsigned char>{1, 0, 1, 0}));  // row 1 is old and small, row 3 old
}

TEST(RowSelectionTest, ADeltaKeepsTheRowsUpdatedAfterItsBaseAndNotEvicted) {
  testing::TempDir dir;
  const std::vector<int64_t> steps = {100, 101, 150, 30, 200};
  testing::write_file(dir.file("steps"), testing::raw_bytes(steps));
  PartDecision d;
  d.step_filter = DecisionColumn{dir.file("steps"), "t.step_filter/part_0_1", 0, 5, DType::kI64, 1};
  d.changed_after = 100;
  auto selector = RowSelector::open(d);
  ASSERT_TRUE(selector) << selector.error().describe();
  std::vector<unsigned char> keep(5);
  EXPECT_EQ(selector.value().decide(0, 5, keep.data()).value(), 3u);
  EXPECT_EQ(keep, (std::vector<unsigned char>{0, 1, 1, 0, 1}));
  d.global_step = 200;
  d.older_than = 60;  // and evict what is more than 60 steps old: 101
  auto both = RowSelector::open(d);
  ASSERT_TRUE(both);
  EXPECT_EQ(both.value().decide(0, 5, keep.data()).value(), 2u);
  EXPECT_EQ(keep, (std::vector<unsigned char>{0, 0, 1, 0, 1}));
}

TEST(RowSelectionTest, ColumnsThatDisagreeOrAreNotRowsOfTheirKindAreBadInput) {
  testing::TempDir dir;
  testing::write_file(dir.file("a"), std::string(64, '\0'));
  PartDecision d;
  d.step_filter = DecisionColumn{dir.file("a"), "t.step_filter/part_0_1", 0, 4, DType::kI64, 1};
  d.embedding = DecisionColumn{dir.file("a"), "t.embedding/part_0_1", 32, 3, DType::kF32, 2};
  auto mismatch = RowSelector::open(d);
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().code, ExitCode::kBadInput);
  EXPECT_NE(mismatch.error().message.find("\"t.step_filter/part_0_1\" has 4 rows but its embedding has 3"),
            std::string::npos)
      << mismatch.error().message;
  d.embedding.reset();
  d.step_filter->dtype = DType::kF32;
  EXPECT_FALSE(RowSelector::open(d));
  d.step_filter->dtype = DType::kI64;
  d.step_filter->rows = 100;  // past the file's end: the read says so
  auto selector = RowSelector::open(d);
  ASSERT_TRUE(selector);
  auto short_read = selector.value().count_kept();
  ASSERT_FALSE(short_read);
  EXPECT_EQ(short_read.error().code, ExitCode::kBadInput);
}

TEST(RowSelectionTest, DecisionColumnsAreFoundInAFileWithTheirPartsAndOffsets) {
  const std::string ids(3 * 8, '\1'), steps(3 * 8, '\2'), rows(3 * 2 * 4, '\3');
  const std::string file = testing::recis_file({{"t.id/part_1_2", "I64", {3}, ids},
                                                {"t.step_filter/part_1_2", "I64", {3, 1}, steps},
                                                {"u.embedding/part_0_2", "F32", {3, 2}, rows},
                                                {"sparse_adamw_step^ ", "I64", {1}, std::string(8, '\0')}});
  testing::TempDir dir;
  testing::write_file(dir.file("f"), file);
  FileDescriptor fd(::open(dir.file("f").c_str(), O_RDONLY));
  auto header = read_safetensors_header(fd.get(), file.size(), dir.file("f"));
  ASSERT_TRUE(header) << header.error().describe();
  std::vector<KeyClass> keys;
  for (const char* logical : {"t@id^32768@65536@65536", "t@step_filter^32768@65536@65536",
                              "u@embedding^00000@32768@65536", ""}) {
    keys.push_back(*classify_key(header.value().tensors[keys.size()].name, logical));
  }
  auto by_step = decision_columns_in(header.value(), keys, dir.file("f"), true, false);
  ASSERT_EQ(by_step.size(), 2u);  // the id too: the rows the step_filter must have
  EXPECT_EQ(by_step[0].slot, "id");
  EXPECT_EQ(by_step[1].part, (PartId{"t", "part_1_2"}));
  EXPECT_EQ(by_step[1].column.rows, 3u);
  EXPECT_EQ(file.substr(by_step[1].column.offset, steps.size()), steps);  // the offset is absolute
  auto both = decision_columns_in(header.value(), keys, dir.file("f"), true, true);
  ASSERT_EQ(both.size(), 3u);
  EXPECT_EQ(both[2].slot, "embedding");
  EXPECT_EQ(both[2].column.row_elements, 2u);
  EXPECT_EQ(file.substr(both[2].column.offset, rows.size()), rows);
}

}  // namespace
}  // namespace recis_convert
