#include "recis_convert/transforms/row_eviction.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

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

TEST(RowEvictionTest, RulesSayWhetherAnyIsSet) {
  EvictionRules rules;
  EXPECT_FALSE(rules.any());
  rules.l2_below = 0.5f;
  EXPECT_TRUE(rules.any());
}

}  // namespace
}  // namespace recis_convert
