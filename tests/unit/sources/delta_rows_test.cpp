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
  testing::write_file(dir + "/index",
                      "{\"block_index\":{\"sparse_adamw_step^ \":0,\"user.embedding/part_0_1\":0,\"user.id/part_0_1\":0},"
                      "\"file_index\":{\"model-000000-of-000001.safetensors\":0}}");
  testing::write_file(dir + "/tensorkey.json",
                      "{\"user.embedding/part_0_1\": \"user@embedding^00000@65536@65536\","
                      "\"user.id/part_0_1\": \"user@id^00000@65536@65536\"}");
}

TEST(DeltaRowsTest, TheNewestDeltaHasTheRowAndIdsKeepTheirFirstPlace) {
  testing::TempDir first, second;
  write_delta(first.path(), {7, 3, 9}, 1);
  write_delta(second.path(), {3, 11}, 2);
  auto deltas = DeltaRows::read({discover_checkpoint(first.path()).value(), discover_checkpoint(second.path()).value()});
  ASSERT_TRUE(deltas) << deltas.error().describe();
  const DeltaRows& d = deltas.value();
  EXPECT_EQ(d.ids_in_order("user"), (std::vector<int64_t>{7, 3, 9, 11}));
  EXPECT_EQ(d.id_count(), 4u);
  const DeltaRows::Entry* three = d.find("user", 3);
  ASSERT_NE(three, nullptr);
  EXPECT_EQ(d.part(three->at.part).slots.at("id").path, second.file("model-000000-of-000001.safetensors"));
  EXPECT_EQ(three->at.row, 0u);
  EXPECT_EQ(three->first, 1u);  // its first appearance: the first delta's second id
  EXPECT_EQ(d.find("user", 9)->at.row, 2u);
  EXPECT_EQ(d.find("user", 4), nullptr);
  EXPECT_EQ(d.find("item", 3), nullptr);
  EXPECT_TRUE(d.ids_in_order("item").empty());
  EXPECT_EQ(d.find("user", 11)->first, 4u);  // after the 3 of the first delta and the second's 3
  ASSERT_NE(d.dense("sparse_adamw_step^ "), nullptr);
  EXPECT_EQ(d.dense("sparse_adamw_step^ ")->path, second.file("model-000000-of-000001.safetensors"));
}

TEST(DeltaRowsTest, ASliceGivesTheIdsOfItsResiduesSortedByResidueThenId) {
  testing::TempDir dir;
  write_delta(dir.path(), {65536 + 5, 70000, 5, -1, 3}, 1);  // residues 5, 4464, 5, 65535, 3
  auto deltas = DeltaRows::read({discover_checkpoint(dir.path()).value()});
  ASSERT_TRUE(deltas) << deltas.error().describe();
  auto ids_of = [&](uint32_t begin, uint32_t end) {
    std::vector<int64_t> ids;
    auto [first, last] = deltas.value().in_slice("user", Slice{begin, end});
    for (const auto* e = first; e != last; ++e) ids.push_back(e->id);
    return ids;
  };
  EXPECT_EQ(ids_of(0, 32768), (std::vector<int64_t>{3, 5, 65536 + 5, 70000}));
  EXPECT_EQ(ids_of(32768, 65536), (std::vector<int64_t>{-1}));
  EXPECT_EQ(ids_of(6, 4464), (std::vector<int64_t>{}));
  auto [none, none_end] = deltas.value().in_slice("item", Slice{});
  EXPECT_EQ(none, none_end);
}

TEST(DeltaRowsTest, ARankKeepsTheIdsOfItsPartsSlicesWithTheirPlaceInTheWholeOrder) {
  testing::TempDir dir;
  write_delta(dir.path(), {70000, 3, -1, 5}, 1);  // residues 4464, 3, 65535, 5
  DeltaRows::Residues wanted;
  wanted["user"].resize(kSliceSize);
  for (uint32_t r = 0; r < 10; ++r) wanted["user"][r] = true;
  wanted["item"];  // a table the rank has no part of (no residues): nothing kept
  auto deltas = DeltaRows::read({discover_checkpoint(dir.path()).value()}, &wanted);
  ASSERT_TRUE(deltas) << deltas.error().describe();
  EXPECT_EQ(deltas.value().ids_in_order("user"), (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(deltas.value().find("user", 5)->first, 3u);  // its place among every id read, not the kept ones
  EXPECT_EQ(deltas.value().find("user", 70000), nullptr);
  EXPECT_EQ(deltas.value().id_count(), 2u);
  EXPECT_EQ(deltas.value().rows_read(), 4u);
}

TEST(DeltaRowsTest, ManyIdsGrowTheTableWithoutLosingAny) {
  testing::TempDir dir;
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < 5000; ++i) ids.push_back(i * 65536);  // one residue: a weak hash would cluster them
  write_delta(dir.path(), ids, 1);
  auto deltas = DeltaRows::read({discover_checkpoint(dir.path()).value()});
  ASSERT_TRUE(deltas) << deltas.error().describe();
  for (int64_t i = 0; i < 5000; ++i) {
    const DeltaRows::Entry* at = deltas.value().find("user", i * 65536);
    ASSERT_NE(at, nullptr) << i;
    EXPECT_EQ(at->at.row, static_cast<uint64_t>(i));
  }
  EXPECT_EQ(deltas.value().find("user", 1), nullptr);
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
