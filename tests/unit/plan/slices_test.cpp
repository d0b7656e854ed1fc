#include "recis_convert/plan/slices.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace recis_convert {
namespace {

TEST(SlicesTest, GenSliceIsRecISsSplit) {
  EXPECT_EQ(slice_string(gen_slice(0, 1)), "00000@65536@65536");
  EXPECT_EQ(slice_string(gen_slice(1, 2)), "32768@65536@65536");
  EXPECT_EQ(slice_string(gen_slice(0, 3)), "00000@21846@65536");  // 65536 % 3 = 1: the first is one longer
  EXPECT_EQ(slice_string(gen_slice(1, 3)), "21846@43691@65536");
  EXPECT_EQ(slice_string(gen_slice(2, 3)), "43691@65536@65536");
  EXPECT_EQ(gen_slice(65535, 65536).begin, 65535u);
}

TEST(SlicesTest, EveryCountTilesTheRangeAndPartOfIdAgrees) {
  for (uint32_t count : {1u, 2u, 3u, 7u, 64u, 1000u, 65535u, 65536u}) {
    uint32_t next = 0;
    for (uint32_t i = 0; i < count; ++i) {
      const Slice s = gen_slice(i, count);
      ASSERT_EQ(s.begin, next) << count << " " << i;
      ASSERT_GT(s.end, s.begin);
      EXPECT_EQ(part_of_id(s.begin, count), i);
      EXPECT_EQ(part_of_id(s.end - 1, count), i);
      next = s.end;
    }
    EXPECT_EQ(next, kSliceSize) << count;
  }
}

TEST(SlicesTest, PartOfIdTakesTheIdAsUnsigned) {
  EXPECT_EQ(part_of_id(65536 + 40000, 2), 1u);
  EXPECT_EQ(part_of_id(-1, 2), 1u);  // 2^64 - 1 = 65535 mod 65536
  EXPECT_EQ(part_of_id(int64_t{1} << 40, 7), 0u);
}

TEST(SlicesTest, ParseAcceptsOnlyRecISsForm) {
  auto slice = parse_slice("21846@43691@65536");
  ASSERT_TRUE(slice);
  EXPECT_EQ(*slice, gen_slice(1, 3));
  for (const char* bad : {"0@43691@65536", "21846@43691", "21846@43691@65536@1", "43691@21846@65536",
                          "00000@65537@65536", "a@b@c", "", "@@", "00000@65536@0"}) {
    EXPECT_FALSE(parse_slice(bad)) << bad;
  }
}

TEST(SlicesTest, ThePartTableAgreesWithPartOfIdForEveryResidue) {
  for (uint32_t count : {1u, 3u, 7u, 4096u, 65535u, 65536u}) {
    const PartOfIdTable table(count);
    for (int64_t id = 0; id < kSliceSize; ++id) ASSERT_EQ(table(id), part_of_id(id, count)) << count << " " << id;
    EXPECT_EQ(table(-1), part_of_id(-1, count));
    EXPECT_EQ(table(INT64_MIN + 5), part_of_id(INT64_MIN + 5, count));
  }
}

}  // namespace
}  // namespace recis_convert
