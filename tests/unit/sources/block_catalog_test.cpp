#include "recis_convert/sources/block_catalog.h"

#include <gtest/gtest.h>

#include "block_catalogs.h"

namespace recis_convert {
namespace {

BlockCatalog three_blocks() {
  return testing::catalog_of({{"b.id/part_0_1", 1, "b@id^0@1@2"}, {"a^ ", 0, ""}, {"c.id/part_0_1", BlockCatalog::kNotIndexed, "c@id^0@1@2"}});
}

TEST(BlockCatalogTest, SortedByKeyAndFound) {
  const BlockCatalog blocks = three_blocks();
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_EQ(blocks[0].key, "a^ ");
  EXPECT_EQ(blocks[1].logical, "b@id^0@1@2");
  EXPECT_EQ(blocks.find("b.id/part_0_1")->file, 1u);
  EXPECT_FALSE(blocks.find("b"));
  EXPECT_FALSE(blocks.find("zzz"));
}

TEST(BlockCatalogTest, OfFilesKeepsOnlyIndexedBlocksOfThoseFiles) {
  const BlockCatalog share = three_blocks().of_files({false, true});
  ASSERT_EQ(share.size(), 1u);
  EXPECT_EQ(share[0].key, "b.id/part_0_1");
  EXPECT_EQ(share[0].file, 1u);
  EXPECT_EQ(three_blocks().encode_of_files({false, true}), share.encode());
  EXPECT_EQ(three_blocks().encode_of_files({true, true}), three_blocks().of_files({true, true}).encode());
  EXPECT_EQ(BlockCatalog::decode(three_blocks().encode_of_files({}))->size(), 0u);
}

TEST(BlockCatalogTest, EncodingRoundTripsAndRejectsTruncation) {
  const BlockCatalog blocks = three_blocks();
  const std::string bytes = blocks.encode();
  auto back = BlockCatalog::decode(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->encode(), bytes);
  EXPECT_EQ(back->find("c.id/part_0_1")->file, BlockCatalog::kNotIndexed);
  for (size_t cut = 0; cut < bytes.size(); ++cut) EXPECT_FALSE(BlockCatalog::decode(bytes.substr(0, cut))) << cut;
}

// Enough keys that the hash lookup's probing runs past occupied slots; every key found at its sorted position,
// every other key not, also in a share and after the trip through the encoding.
TEST(BlockCatalogTest, LookupFindsEveryKeyAtItsPosition) {
  BlockCatalog::Builder builder;
  std::vector<std::string> keys;
  for (int i = 0; i < 20000; ++i) keys.push_back("t" + std::to_string(i * 7919 % 20000) + ".id/part_0_1");
  for (size_t i = 0; i < keys.size(); ++i) builder.add(keys[i], static_cast<uint32_t>(i % 3), "");
  const BlockCatalog blocks = std::move(builder).finish();
  for (size_t i = 0; i < blocks.size(); ++i) ASSERT_EQ(blocks.find_index(blocks[i].key), i);
  for (int i = 20000; i < 21000; ++i) ASSERT_FALSE(blocks.find("t" + std::to_string(i) + ".id/part_0_1"));
  EXPECT_FALSE(blocks.find(""));
  const BlockCatalog share = blocks.of_files({false, true, false});
  auto decoded = BlockCatalog::decode(share.encode());
  ASSERT_TRUE(decoded);
  for (const BlockCatalog* catalog : std::vector<const BlockCatalog*>{&share, &decoded.value()}) {
    for (size_t i = 0; i < catalog->size(); ++i) ASSERT_EQ(catalog->find_index((*catalog)[i].key), i);
    size_t found = 0;
    for (const auto& key : keys) found += catalog->find(key).has_value();
    EXPECT_EQ(found, catalog->size());
  }
  EXPECT_FALSE(BlockCatalog().find("t1.id/part_0_1"));
}

}  // namespace
}  // namespace recis_convert
