#include "recis_convert/metadata/key_order.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "block_catalogs.h"

namespace recis_convert {
namespace {

TensorInfo named(const std::string& name) {
  TensorInfo t;
  t.name = name;
  return t;
}

FileResult file(const std::string& name, bool written, std::vector<std::string> kept,
                std::vector<std::string> dropped = {}) {
  FileResult f;
  f.name = name;
  f.written = written;
  for (const auto& k : kept) f.kept.push_back(named(k));
  for (const auto& d : dropped) f.dropped.push_back(named(d));
  return f;
}

// Many files whose tensors interleave, each file's list shuffled: the walk gives the one sorted order, the same as
// sorting every name at once.
TEST(KeyOrderTest, WalkGivesEveryTensorInKeyOrder) {
  std::mt19937 random(7);
  std::vector<FileResult> files;
  std::vector<std::string> all;
  for (int f = 0; f < 13; ++f) {
    FileResult result = file("f" + std::to_string(f), true, {});
    for (int i = 0; i < 50; ++i) {
      const std::string name = "t" + std::to_string(random() % 100000) + "." + std::to_string(f);
      (i % 3 ? result.kept : result.dropped).push_back(named(name));
      all.push_back(name);
    }
    std::shuffle(result.kept.begin(), result.kept.end(), random);
    files.push_back(std::move(result));
  }
  std::sort(all.begin(), all.end());
  std::vector<std::string> walked;
  for_each_in_key_order(files, TensorsOf::kKeptAndDropped,
                        [&](const TensorInfo& t, size_t f, bool is_kept) {
                          EXPECT_EQ(is_kept, &t >= files[f].kept.data() &&
                                                 &t < files[f].kept.data() + files[f].kept.size());
                          walked.push_back(t.name);
                          EXPECT_EQ(t.name.substr(t.name.find('.') + 1), std::to_string(f));
                        });
  EXPECT_EQ(walked, all);
  size_t kept = 0;
  for_each_in_key_order(files, TensorsOf::kKept, [&](const TensorInfo&, size_t, bool is_kept) { kept += is_kept; });
  EXPECT_EQ(kept, 13u * 33u);
}

TEST(KeyOrderTest, KeptTensorsCarryTheirWrittenFileNumberAndTensorkeyName) {
  const std::vector<FileResult> files = {file("a", true, {"x^ ", "t.id/part_0_1"}), file("b", false, {"u.id/part_0_1"}),
                                         file("c", true, {"s.id/part_0_1"}, {"s.adam/part_0_1"})};
  const BlockCatalog blocks = testing::catalog_of(
      {{"x^ ", 0, ""}, {"t.id/part_0_1", 0, "t@id^0@1@2"}, {"s.id/part_0_1", 2, "s@id^0@1@2"}});
  const auto kept = kept_in_key_order(files, blocks);
  ASSERT_EQ(kept.size(), 4u);
  EXPECT_EQ(kept[0].tensor->name, "s.id/part_0_1");
  EXPECT_EQ(kept[0].file, &files[2]);
  EXPECT_EQ(kept[0].file_number, 1u);  // "b" is not written: "c" is the second written file
  EXPECT_EQ(kept[0].logical, "s@id^0@1@2");
  EXPECT_EQ(kept[1].tensor->name, "t.id/part_0_1");
  EXPECT_EQ(kept[1].file_number, 0u);
  EXPECT_EQ(kept[2].tensor->name, "u.id/part_0_1");
  EXPECT_EQ(kept[2].logical, "");  // not in the catalog
  EXPECT_EQ(kept[3].tensor->name, "x^ ");
  EXPECT_EQ(kept[3].tensor, &files[0].kept[0]);
}

// The walk also finds the first block the index places in a file that no file had, kept or dropped; blocks only
// in tensorkey.json are not missing.
TEST(KeyOrderTest, FindsTheFirstIndexedBlockNoFileHas) {
  const std::vector<FileResult> files = {file("a", true, {"b", "d"}, {"c"})};
  auto order_with = [&](std::vector<testing::BlockRow> rows) { return order_by_key(files, testing::catalog_of(rows)); };
  EXPECT_FALSE(order_with({{"b", 0, ""}, {"c", 0, ""}, {"d", 0, ""}}).missing_block);
  EXPECT_FALSE(order_with({{"a", BlockCatalog::kNotIndexed, "a@x^0@1@2"}, {"b", 0, ""}, {"d", 0, ""},
                           {"e", BlockCatalog::kNotIndexed, "e@x^0@1@2"}}).missing_block);
  EXPECT_EQ(order_with({{"a", 0, ""}, {"b", 0, ""}, {"d", 0, ""}}).missing_block, 0u);
  EXPECT_EQ(order_with({{"b", 0, ""}, {"bb", 0, ""}, {"d", 0, ""}}).missing_block, 1u);
  EXPECT_EQ(order_with({{"b", 0, ""}, {"d", 0, ""}, {"e", 0, ""}, {"f", 0, ""}}).missing_block, 2u);
  EXPECT_EQ(order_by_key({}, testing::catalog_of({{"a", 0, ""}})).missing_block, 0u);
}

TEST(KeyOrderTest, ANameInTwoFilesKeepsTheLaterFile) {
  const std::vector<FileResult> files = {file("a", true, {"k"}), file("b", true, {"k"})};
  const auto kept = kept_in_key_order(files, BlockCatalog());
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].file, &files[1]);
}

TEST(KeyOrderTest, NoFilesNoTensors) {
  EXPECT_TRUE(kept_in_key_order({}, BlockCatalog()).empty());
  EXPECT_TRUE(kept_in_key_order({file("a", false, {})}, BlockCatalog()).empty());
}

}  // namespace
}  // namespace recis_convert
