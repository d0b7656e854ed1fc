#include "recis_convert/sources/id_index.h"

#include <gtest/gtest.h>

namespace recis_convert {
namespace {

TEST(IdIndexTest, FindsWhatWasInsertedAndKeepsTheFirstIndexOfAnId) {
  IdIndex index(1000);
  for (uint32_t i = 0; i < 500; ++i) EXPECT_EQ(index.insert(int64_t{i} * 65536 - 7, i), i);  // one stride: mixed
  EXPECT_EQ(index.insert(-7, 999), 0u);  // there already
  for (uint32_t i = 0; i < 500; ++i) EXPECT_EQ(index.find(int64_t{i} * 65536 - 7), i);
  EXPECT_EQ(index.find(3), IdIndex::kNone);
  EXPECT_EQ(IdIndex(0).find(3), IdIndex::kNone);  // an empty table has no slots
}

}  // namespace
}  // namespace recis_convert
