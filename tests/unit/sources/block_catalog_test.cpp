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

}  // namespace
}  // namespace recis_convert
