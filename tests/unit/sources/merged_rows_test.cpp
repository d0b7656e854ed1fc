#include "recis_convert/sources/merged_rows.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "recis_convert/common/file_io.h"
#include "recis_convert/sources/checkpoint.h"
#include "test_files.h"

namespace recis_convert {
namespace {

// A delta export of table "user" in one part (slice 0..65536): ids 2, 7, 8, 9, each row {10 * id, id}.
Result<CheckpointListing> write_delta(const testing::TempDir& dir) {
  const std::vector<int64_t> ids{2, 7, 8, 9};
  std::vector<float> rows;
  for (int64_t id : ids) rows.insert(rows.end(), {10.0f * id, static_cast<float>(id)});
  testing::write_file(dir.file("model-000000-of-000001.safetensors"),
                      testing::recis_file({{"user.id/part_0_1", "I64", {4}, testing::raw_bytes(ids)},
                                           {"user.embedding/part_0_1", "F32", {4, 2}, testing::raw_bytes(rows)}}));
  testing::write_catalog(dir.path(), "model-000000-of-000001.safetensors",
                         {{"user.embedding/part_0_1", "user@embedding^00000@65536@65536"},
                          {"user.id/part_0_1", "user@id^00000@65536@65536"}});
  return discover_checkpoint(dir.path());
}

// The first float of each of `rows` rows.
std::vector<float> firsts(const std::vector<unsigned char>& out, size_t rows) {
  std::vector<float> values(rows);
  for (size_t r = 0; r < rows; ++r) std::memcpy(&values[r], out.data() + r * 8, 4);
  return values;
}

TEST(MergedRowsTest, BaseRowsTakeTheirReplacementsAndTheGainedRowsFollow) {
  testing::TempDir base_dir, delta_dir;
  // the base part: ids 1..6 (row r holds {r + 1, 0}); the delta replaces id 2 (row 1) and adds 7, 8, 9
  std::vector<float> base_rows;
  for (int r = 0; r < 6; ++r) base_rows.insert(base_rows.end(), {static_cast<float>(r + 1), 0.0f});
  const std::string base = base_dir.file("base.bin");
  testing::write_file(base, std::string(5, 'x') + testing::raw_bytes(base_rows));
  auto delta = write_delta(delta_dir);
  ASSERT_TRUE(delta) << delta.error().describe();
  auto deltas = DeltaRows::read({delta.value()});
  ASSERT_TRUE(deltas) << deltas.error().describe();
  std::vector<DeltaRows::Location> added;
  for (int64_t id : {7, 8, 9}) added.push_back(deltas.value().find("user", id).value()->at);
  auto merge = std::make_shared<PartMerge>(
      6, std::vector<PartMerge::Replacement>{{1, deltas.value().find("user", 2).value()->at}}, added);
  ASSERT_EQ(merge->rows(), 9u);
  auto fd = open_input_file(base);
  ASSERT_TRUE(fd);
  OpenInputs files;
  MergedRows rows(FileColumn{fd.value().get(), base, "tensor \"user.embedding/part_0_1\"", 5, 8}, merge, deltas.value(),
                  "embedding", files);
  std::vector<unsigned char> out(9 * 8);
  unsigned char* into[] = {out.data()};
  ASSERT_TRUE(rows.read(0, 9, nullptr, into));
  EXPECT_EQ(firsts(out, 9), (std::vector<float>{1, 20, 3, 4, 5, 6, 70, 80, 90}));
  // a range across the end of the base's rows, and only some of its rows
  ASSERT_TRUE(rows.read(4, 4, nullptr, into));
  EXPECT_EQ(firsts(out, 4), (std::vector<float>{5, 6, 70, 80}));
  const std::vector<uint32_t> kept{0, 1, 4, 7};  // rows 1, 2, 5, 8
  ASSERT_TRUE(rows.read(1, 8, &kept, into));
  EXPECT_EQ(firsts(out, 4), (std::vector<float>{20, 3, 6, 90}));
}

// A read of more rows than a window places at once: every window's replacements and gained rows land where they
// belong, all rows or only the kept ones.
TEST(MergedRowsTest, AReadOfManyWindowsPlacesEveryDeltaRow) {
  testing::TempDir base_dir, delta_dir;
  const uint64_t base_rows = 2 * MergedRows::kWindowRows + 100;
  std::vector<float> rows;
  for (uint64_t r = 0; r < base_rows; ++r) rows.insert(rows.end(), {static_cast<float>(r), 0.0f});
  const std::string base = base_dir.file("base.bin");
  testing::write_file(base, testing::raw_bytes(rows));
  auto delta = write_delta(delta_dir);
  ASSERT_TRUE(delta);
  auto deltas = DeltaRows::read({delta.value()});
  ASSERT_TRUE(deltas);
  auto at = [&](int64_t id) { return deltas.value().find("user", id).value()->at; };
  // id 2's row (20) replaces base rows on both sides of each window's edge; 7, 8, 9 (70, 80, 90) are gained
  const uint64_t w = MergedRows::kWindowRows;
  const std::vector<uint64_t> replaced{0, w - 1, w, 2 * w - 1, 2 * w, base_rows - 1};
  std::vector<PartMerge::Replacement> replacements;
  for (uint64_t r : replaced) replacements.push_back({r, at(2)});
  auto merge = std::make_shared<PartMerge>(base_rows, replacements, std::vector<DeltaRows::Location>{at(7), at(8), at(9)});
  auto fd = open_input_file(base);
  ASSERT_TRUE(fd);
  OpenInputs files;
  MergedRows reader(FileColumn{fd.value().get(), base, "tensor", 0, 8}, merge, deltas.value(), "embedding", files);
  auto expected = [&](uint64_t row) -> float {
    if (row >= base_rows) return 70.0f + 10.0f * static_cast<float>(row - base_rows);
    return std::count(replaced.begin(), replaced.end(), row) ? 20.0f : static_cast<float>(row);
  };
  std::vector<unsigned char> out((base_rows + 3) * 8);
  unsigned char* into[] = {out.data()};
  ASSERT_TRUE(reader.read(0, base_rows + 3, nullptr, into));
  std::vector<float> got = firsts(out, base_rows + 3);
  for (uint64_t r = 0; r < base_rows + 3; ++r) ASSERT_EQ(got[r], expected(r)) << "row " << r;
  std::vector<uint32_t> kept;  // from row 5 on: every row next to a window's edge, and the last gained
  for (uint64_t r : {w - 2, w - 1, w, 2 * w, base_rows - 1, base_rows + 2}) kept.push_back(static_cast<uint32_t>(r - 5));
  ASSERT_TRUE(reader.read(5, base_rows - 2, &kept, into));
  got = firsts(out, kept.size());
  for (size_t i = 0; i < kept.size(); ++i) EXPECT_EQ(got[i], expected(kept[i] + 5)) << "kept " << i;
}

TEST(MergedRowsTest, ADeltaPartWithoutTheSlotIsBadInputNamingIt) {
  testing::TempDir base_dir, delta_dir;
  const std::string base = base_dir.file("base.bin");
  testing::write_file(base, std::string(16, '\0'));
  auto delta = write_delta(delta_dir);
  ASSERT_TRUE(delta);
  auto deltas = DeltaRows::read({delta.value()});
  ASSERT_TRUE(deltas);
  auto merge = std::make_shared<PartMerge>(
      2, std::vector<PartMerge::Replacement>{{0, deltas.value().find("user", 7).value()->at}},
      std::vector<DeltaRows::Location>{});
  auto fd = open_input_file(base);
  ASSERT_TRUE(fd);
  OpenInputs files;
  MergedRows rows(FileColumn{fd.value().get(), base, "tensor", 0, 8}, merge, deltas.value(), "exp_avg", files);
  std::vector<unsigned char> out(16);
  unsigned char* into[] = {out.data()};
  auto read = rows.read(0, 2, nullptr, into);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, ExitCode::kBadInput);
  EXPECT_NE(read.error().describe().find("has no slot \"exp_avg\""), std::string::npos) << read.error().describe();
}

}  // namespace
}  // namespace recis_convert
