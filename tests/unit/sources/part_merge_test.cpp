#include "recis_convert/sources/part_merge.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "recis_convert/common/file_io.h"
#include "recis_convert/sources/checkpoint.h"
#include "test_files.h"

namespace recis_convert {
namespace {

// A delta export of table "user" in two parts, ids with residues in [0, 32768) and [32768, 65536), one row each.
Result<CheckpointListing> write_delta(const testing::TempDir& dir, const std::vector<int64_t>& low,
                                      const std::vector<int64_t>& high) {
  auto rows = [](const std::vector<int64_t>& ids) { return testing::raw_bytes(std::vector<float>(ids.size(), 1.0f)); };
  const std::string file = "model-000000-of-000001.safetensors";
  testing::write_file(dir.file(file), testing::recis_file(
                                          {{"user.embedding/part_0_2", "F32", {low.size(), 1}, rows(low)},
                                           {"user.embedding/part_1_2", "F32", {high.size(), 1}, rows(high)},
                                           {"user.id/part_0_2", "I64", {low.size()}, testing::raw_bytes(low)},
                                           {"user.id/part_1_2", "I64", {high.size()}, testing::raw_bytes(high)}}));
  testing::write_catalog(dir.path(), file,
                         {{"user.embedding/part_0_2", "user@embedding^00000@32768@65536"},
                          {"user.embedding/part_1_2", "user@embedding^32768@65536@65536"},
                          {"user.id/part_0_2", "user@id^00000@32768@65536"},
                          {"user.id/part_1_2", "user@id^32768@65536@65536"}});
  return discover_checkpoint(dir.path());
}

// `n` distinct ids with residues in [begin, begin + 32768), not in `taken` (which gets them).
std::vector<int64_t> ids_in(std::mt19937_64& rng, size_t n, int64_t begin, std::set<int64_t>& taken) {
  std::vector<int64_t> ids;
  while (ids.size() < n) {
    const int64_t id = static_cast<int64_t>(rng() % 4096) * 65536 + begin + static_cast<int64_t>(rng() % 32768);
    if (taken.insert(id).second) ids.push_back(id);
  }
  return ids;
}

void expect_same(const PartMerge& a, const PartMerge& b, uint64_t first, uint64_t end) {
  std::vector<PartMerge::Replacement> ra, rb;
  ASSERT_TRUE(a.replaced_between(first, end, ra));
  ASSERT_TRUE(b.replaced_between(first, end, rb));
  ASSERT_EQ(ra.size(), rb.size()) << first << ".." << end;
  for (size_t i = 0; i < ra.size(); ++i) {
    EXPECT_EQ(ra[i].row, rb[i].row);
    EXPECT_EQ(ra[i].at.part, rb[i].at.part);
    EXPECT_EQ(ra[i].at.row, rb[i].at.row);
  }
}

// The join of a part whose deltas' ids would not fit its memory gives what the join in memory gives: the base
// rows the newest delta replaces, in row order, and the gained ids in order of first appearance.
TEST(PartMergeTest, AJoinLargerThanItsMemorySpillsAndGivesTheSameMerge) {
  testing::TempDir base_dir, first_dir, second_dir, spill;
  std::mt19937_64 rng(7);
  std::set<int64_t> taken;
  const std::vector<int64_t> base = ids_in(rng, 5000, 0, taken);
  // the first delta: 2000 of the base's ids (every other from 1000 on) and 1500 new ones; the second: 700 of the
  // first's, 300 of the base's the first left alone, 400 new, and ids of the other half of the table
  std::vector<int64_t> first_low, second_low;
  for (size_t i = 1000; i < 5000; i += 2) first_low.push_back(base[i]);
  const std::vector<int64_t> first_new = ids_in(rng, 1500, 0, taken);
  first_low.insert(first_low.begin() + 700, first_new.begin(), first_new.end());
  for (size_t i = 0; i < 700; ++i) second_low.push_back(first_low[(i * 5) % first_low.size()]);
  for (size_t i = 0; i < 300; ++i) second_low.push_back(base[i]);
  const std::vector<int64_t> second_new = ids_in(rng, 400, 0, taken);
  second_low.insert(second_low.end(), second_new.begin(), second_new.end());
  std::shuffle(second_low.begin(), second_low.end(), rng);
  auto first = write_delta(first_dir, first_low, ids_in(rng, 800, 32768, taken));
  auto second = write_delta(second_dir, second_low, ids_in(rng, 900, 32768, taken));
  ASSERT_TRUE(first) << first.error().describe();
  ASSERT_TRUE(second) << second.error().describe();
  auto deltas = DeltaRows::read({first.value(), second.value()});
  ASSERT_TRUE(deltas) << deltas.error().describe();

  const std::string path = base_dir.file("ids.bin");
  testing::write_file(path, std::string(3, 'x') + testing::raw_bytes(base));
  TensorInfo tensor{"user.id/part_0_2", DType::kI64, "I64", {base.size()}, 0, base.size() * 8};
  const RowColumn ids{path, tensor.name, tensor, 3};
  auto fd = open_input_file(path);
  ASSERT_TRUE(fd);
  const Slice slice{0, 32768};
  auto in_memory = join_part(ids, fd.value().get(), deltas.value(), "user", slice, JoinSettings{});
  ASSERT_TRUE(in_memory) << in_memory.error().describe();
  ASSERT_FALSE(in_memory.value()->spilled());
  JoinSettings small;
  small.join_bytes = 64u << 10;  // about 500 delta ids a class: 13 classes
  small.spill_dir = spill.path();
  auto spilled = join_part(ids, fd.value().get(), deltas.value(), "user", slice, small);
  ASSERT_TRUE(spilled) << spilled.error().describe();
  ASSERT_TRUE(spilled.value()->spilled());

  const PartMerge& a = *in_memory.value();
  const PartMerge& b = *spilled.value();
  EXPECT_EQ(a.base_rows(), 5000u);
  EXPECT_EQ(a.rows(), 5000u + 1500 + 400);
  EXPECT_EQ(b.rows(), a.rows());
  std::vector<PartMerge::Replacement> all;
  ASSERT_TRUE(a.replaced_between(0, 5000, all));
  EXPECT_EQ(all.size(), 2000u + 300);
  expect_same(a, b, 0, 5000);
  for (uint64_t from = 0; from < 5000; from += 613) expect_same(a, b, from, from + 1000);
  std::vector<DeltaRows::Location> added_a, added_b;
  ASSERT_TRUE(a.added_between(0, 1900, added_a));
  ASSERT_TRUE(b.added_between(0, 1900, added_b));
  ASSERT_EQ(added_a.size(), 1900u);
  ASSERT_EQ(added_b.size(), 1900u);
  for (size_t i = 0; i < added_a.size(); ++i) {
    EXPECT_EQ(added_a[i].part, added_b[i].part) << i;
    EXPECT_EQ(added_a[i].row, added_b[i].row) << i;
  }
  ASSERT_TRUE(b.added_between(1499, 1502, added_b));
  EXPECT_EQ(added_b.size(), 3u);
  EXPECT_EQ(added_b[0].part, added_a[1499].part);
  EXPECT_EQ(added_b[2].row, added_a[1501].row);
  // the spill file has no name: nothing is left in its directory
  size_t entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(spill.path())) entries += !entry.path().empty();
  EXPECT_EQ(entries, 0u);
}

}  // namespace
}  // namespace recis_convert
