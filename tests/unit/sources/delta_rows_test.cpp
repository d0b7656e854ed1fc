#include "recis_convert/sources/delta_rows.h"

#include <gtest/gtest.h>

#include "test_files.h"

namespace recis_convert {
namespace {

// A delta export of table "user" in one part: `ids`, an embedding [n, 2] F32, and a dense scalar.
void write_delta(const std::string& dir, const std::vector<int64_t>& ids, int64_t scalar) {
  std::vector<float> rows(ids.size() * 2, 1.0f);
  testing::write_file(dir + "/model-000000-of-000001.safetensors",
                      testing::recis_file({{"user.id/part_0_1", "I64", {ids.size()}, testing::raw_bytes(ids)},
                                           {"user.embedding/part_0_1", "F32", {ids.size(), 2}, testing::raw_bytes(rows)},
                                           {"sparse_adamw_step^ ", "I64", {1}, testing::raw_bytes(std::vector<int64_t>{scalar})}}));
  testing::write_catalog(dir, "model-000000-of-000001.safetensors",
                         {{"sparse_adamw_step^ ", ""},
                          {"user.embedding/part_0_1", "user@embedding^00000@65536@65536"},
                          {"user.id/part_0_1", "user@id^00000@65536@65536"}});
}

// The entry of `id`, which the test expects to be there.
DeltaRows::Entry entry(const DeltaRows& d, int64_t id) {
  auto found = d.find("user", id);
  EXPECT_TRUE(found && found.value()) << id;
  return found && found.value() ? *found.value() : DeltaRows::Entry{};
}

TEST(DeltaRowsTest, TheNewestDeltaHasTheRowAndIdsKeepTheirFirstPlace) {
  testing::TempDir first, second;
  write_delta(first.path(), {7, 3, 9}, 1);
  write_delta(second.path(), {3, 11}, 2);
  auto deltas = DeltaRows::read({discover_checkpoint(first.path()).value(), discover_checkpoint(second.path()).value()});
  ASSERT_TRUE(deltas) << deltas.error().describe();
  const DeltaRows& d = deltas.value();
  EXPECT_EQ(d.ids_in_order("user").value(), (std::vector<int64_t>{7, 3, 9, 11}));
  EXPECT_EQ(d.rows(), 5u);  // 3 appears in both
  const DeltaRows::Entry three = entry(d, 3);
  EXPECT_EQ(d.part(three.at.part).slots.at("id").path, second.file("model-000000-of-000001.safetensors"));
  EXPECT_EQ(three.at.row, 0u);
  EXPECT_EQ(three.first.part, 0u);  // it first appeared in the first delta, its second row
  EXPECT_EQ(three.first.row, 1u);
  EXPECT_EQ(entry(d, 9).at.row, 2u);
  EXPECT_FALSE(d.find("user", 4).value());
  EXPECT_FALSE(d.find("item", 3).value());
  EXPECT_TRUE(d.ids_in_order("item").value().empty());
  ASSERT_NE(d.dense("sparse_adamw_step^ "), nullptr);
  EXPECT_EQ(d.dense("sparse_adamw_step^ ")->path, second.file("model-000000-of-000001.safetensors"));
}

TEST(DeltaRowsTest, ASliceGivesTheIdsOfItsResiduesInOrderOfFirstAppearance) {
  testing::TempDir dir;
  write_delta(dir.path(), {65536 + 5, 70000, 5, -1, 3}, 1);  // residues 5, 4464, 5, 65535, 3
  auto deltas = DeltaRows::read({discover_checkpoint(dir.path()).value()});
  ASSERT_TRUE(deltas) << deltas.error().describe();
  auto ids_of = [&](uint32_t begin, uint32_t end) {
    std::vector<int64_t> ids;
    auto entries = deltas.value().in_slice("user", Slice{begin, end});
    EXPECT_TRUE(entries);
    if (entries) {
      for (const auto& e : entries.value()) ids.push_back(e.id);
    }
    return ids;
  };
  EXPECT_EQ(ids_of(0, 32768), (std::vector<int64_t>{65536 + 5, 70000, 5, 3}));
  EXPECT_EQ(ids_of(32768, 65536), (std::vector<int64_t>{-1}));
  EXPECT_EQ(ids_of(6, 4464), (std::vector<int64_t>{}));
  EXPECT_TRUE(deltas.value().in_slice("item", Slice{}).value().empty());
}

TEST(DeltaRowsTest, AnIdOutsideItsPartsSliceIsBadInputNamingIt) {
  testing::TempDir dir;  // two parts; the first, for residues [0, 32768), holds 40000, whose residue is not its
  const std::vector<int64_t> first{1, 40000}, second{32769};
  testing::write_file(dir.file("model-000000-of-000001.safetensors"),
                      testing::recis_file({{"user.id/part_0_2", "I64", {2}, testing::raw_bytes(first)},
                                           {"user.id/part_1_2", "I64", {1}, testing::raw_bytes(second)}}));
  testing::write_catalog(dir.path(), "model-000000-of-000001.safetensors",
                         {{"user.id/part_0_2", "user@id^00000@32768@65536"},
                          {"user.id/part_1_2", "user@id^32768@65536@65536"}});
  auto listing = discover_checkpoint(dir.path());
  ASSERT_TRUE(listing) << listing.error().describe();
  auto deltas = DeltaRows::read({listing.value()});
  ASSERT_TRUE(deltas) << deltas.error().describe();
  auto read = deltas.value().in_slice("user", Slice{0, 32768});
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, ExitCode::kBadInput);
  EXPECT_NE(read.error().describe().find("row 1: id 40000 lies outside its part's slice"), std::string::npos)
      << read.error().describe();
  EXPECT_TRUE(deltas.value().in_slice("user", Slice{32768, 65536}));  // the other part is read alone, and is right
}

TEST(DeltaRowsTest, ManyIdsOfOneResidueAreAllThere) {
  testing::TempDir dir;
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < 5000; ++i) ids.push_back(i * 65536);  // one residue
  write_delta(dir.path(), ids, 1);
  auto deltas = DeltaRows::read({discover_checkpoint(dir.path()).value()});
  ASSERT_TRUE(deltas) << deltas.error().describe();
  auto all = deltas.value().in_slice("user", Slice{0, 1});
  ASSERT_TRUE(all);
  ASSERT_EQ(all.value().size(), 5000u);
  for (int64_t i = 0; i < 5000; ++i) EXPECT_EQ(all.value()[static_cast<size_t>(i)].at.row, static_cast<uint64_t>(i));
  EXPECT_FALSE(deltas.value().find("user", 1).value());
}

TEST(DeltaRowsTest, ASlotWhoseRowsDisagreeWithItsIdIsBadInput) {
  testing::TempDir dir;
  write_delta(dir.path(), {1, 2}, 1);
  testing::write_file(dir.file("model-000000-of-000001.safetensors"),
                      testing::recis_file({{"user.id/part_0_1", "I64", {2}, testing::raw_bytes(std::vector<int64_t>{1, 2})},
                                           {"user.embedding/part_0_1", "F32", {3, 2}, std::string(24, '\0')},
                                           {"sparse_adamw_step^ ", "I64", {1}, std::string(8, '\0')}}));
  auto deltas = DeltaRows::read({discover_checkpoint(dir.path()).value()});
  ASSERT_FALSE(deltas);
  EXPECT_EQ(deltas.error().code, ExitCode::kBadInput);
  EXPECT_NE(deltas.error().describe().find("\"user.embedding/part_0_1\" has 3 rows but its part's id has 2"),
            std::string::npos)
      << deltas.error().describe();
}

}  // namespace
}  // namespace recis_convert
