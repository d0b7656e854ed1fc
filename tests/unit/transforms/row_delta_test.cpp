#include "recis_convert/transforms/row_delta.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace recis_convert {
namespace {

std::vector<unsigned char> column(const std::vector<int64_t>& steps) {
  std::vector<unsigned char> bytes(steps.size() * sizeof(int64_t));
  std::memcpy(bytes.data(), steps.data(), bytes.size());
  return bytes;
}

TEST(RowDeltaTest, OnlyRowsUpdatedAfterTheBaseStepChanged) {
  EXPECT_FALSE(changed_after(100, 99));
  EXPECT_FALSE(changed_after(100, 100));  // updated at the base's step: the base has it
  EXPECT_TRUE(changed_after(100, 101));
  EXPECT_TRUE(changed_after(-1, 0));
}

TEST(RowDeltaTest, DecisionsCombineWithThoseAlreadyMade) {
  const auto steps = column({50, 150, 100, 200, 101});
  std::vector<unsigned char> keep = {1, 1, 1, 0, 1};  // row 3 was evicted already
  EXPECT_EQ(decide_by_change(steps.data(), 5, 100, keep.data()), 2u);
  EXPECT_EQ(keep, (std::vector<unsigned char>{0, 1, 0, 0, 1}));
}

}  // namespace
}  // namespace recis_convert
