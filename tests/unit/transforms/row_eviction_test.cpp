#include "recis_convert/transforms/row_eviction.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace recis_convert {
namespace {

TEST(RowEvictionTest, ARowExactlyStepsOldStays) {
  EXPECT_TRUE(kept_by_step(1000, 900, 100));
  EXPECT_FALSE(kept_by_step(1000, 899, 100));
  EXPECT_TRUE(kept_by_step(1000, 1000, 0));
  EXPECT_FALSE(kept_by_step(1000, 999, 0));
}

TEST(RowEvictionTest, RowsFromTheFutureStayAndExtremesDoNotOverflow) {
  EXPECT_TRUE(kept_by_step(10, 20, 0));
  const int64_t lowest = std::numeric_limits<int64_t>::min(), highest = std::numeric_limits<int64_t>::max();
  EXPECT_FALSE(kept_by_step(highest, lowest, std::numeric_limits<uint64_t>::max() - 1));
  EXPECT_TRUE(kept_by_step(highest, lowest, std::numeric_limits<uint64_t>::max()));
}

TEST(RowEvictionTest, NormIsFloat32InElementOrder) {
  const float row[] = {3.0f, 4.0f};
  EXPECT_EQ(l2_norm(row, 2), 5.0f);
  EXPECT_TRUE(kept_by_norm(row, 2, 5.0f));   // not below: stays
  EXPECT_FALSE(kept_by_norm(row, 2, 5.0001f));
  const float zeros[] = {0.0f, 0.0f};
  EXPECT_FALSE(kept_by_norm(zeros, 2, 1e-30f));
  EXPECT_TRUE(kept_by_norm(zeros, 2, 0.0f));
}

TEST(RowEvictionTest, StepFilterColumnDecidesAndRowsCompactInOrder) {
  const int64_t steps[] = {100, 40, 90, 89, 200};
  unsigned char keep[5];
  EXPECT_EQ(decide_by_step(reinterpret_cast<const unsigned char*>(steps), 5, 100, 10, keep), 3u);
  EXPECT_EQ(std::vector<unsigned char>(keep, keep + 5), (std::vector<unsigned char>{1, 0, 1, 0, 1}));
  // three-byte rows "a0a", "b1b", ...: the kept ones move to the front, in order
  std::string rows = "a0ab1bc2cd3de4e";
  EXPECT_EQ(compact_rows(reinterpret_cast<unsigned char*>(rows.data()), 3, keep, 5), 3u);
  EXPECT_EQ(rows.substr(0, 9), "a0ac2ce4e");
  unsigned char none[2] = {0, 0};
  EXPECT_EQ(compact_rows(reinterpret_cast<unsigned char*>(rows.data()), 3, none, 2), 0u);
}

TEST(RowEvictionTest, CompactingRunsAndSkippedWordsKeepsTheRowsInOrder) {
  // sparse (a delta), dense (an eviction) and mixed decisions, with runs across the eight-row words
  for (unsigned density : {3u, 50u, 97u}) {
    const uint64_t n = 1003, width = 5;
    std::vector<unsigned char> keep(n), rows(n * width);
    std::vector<unsigned char> expected;
    for (uint64_t i = 0; i < n; ++i) {
      keep[i] = (i * 2654435761u) % 100 < density || (i >= 400 && i < 420) ? 1 : 0;
      for (uint64_t b = 0; b < width; ++b) rows[i * width + b] = static_cast<unsigned char>(i * 7 + b);
      if (keep[i]) expected.insert(expected.end(), rows.begin() + static_cast<long>(i * width),
                                   rows.begin() + static_cast<long>((i + 1) * width));
    }
    const uint64_t kept = compact_rows(rows.data(), width, keep.data(), n);
    ASSERT_EQ(kept * width, expected.size()) << density;
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), rows.begin())) << density;
  }
}

TEST(RowEvictionTest, RulesSayWhetherAnyIsSet) {
  EvictionRules rules;
  EXPECT_FALSE(rules.any());
  rules.l2_below = 0.5f;
  EXPECT_TRUE(rules.any());
}

}  // namespace
}  // namespace recis_convert
