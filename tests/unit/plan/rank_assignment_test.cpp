#include "recis_convert/plan/rank_assignment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

namespace recis_convert {
namespace {

TEST(PlanTest, RoundRobinDealsFileIToRankIModSize) {
  auto owners = assign_files(std::vector<uint64_t>(7, 1), 3, Balance::kRoundRobin);
  EXPECT_EQ(owners, (std::vector<int>{0, 1, 2, 0, 1, 2, 0}));
  EXPECT_EQ(files_of_rank(owners, 1), (std::vector<size_t>{1, 4}));
}

TEST(PlanTest, SingleRankOwnsEverything) {
  auto owners = assign_files({5, 1, 9}, 1, Balance::kSize);
  EXPECT_EQ(owners, (std::vector<int>{0, 0, 0}));
}

TEST(PlanTest, MoreRanksThanFilesLeavesSomeIdle) {
  auto owners = assign_files({5, 1}, 4, Balance::kRoundRobin);
  EXPECT_TRUE(files_of_rank(owners, 3).empty());
  EXPECT_EQ(files_of_rank(owners, 1), (std::vector<size_t>{1}));
}

TEST(PlanTest, SizeBalanceGivesTheBigFileItsOwnRank) {
  // Round-robin would put 100 and 1 on rank 0 and 1 and 1 on rank 1; greedy by size isolates the 100.
  auto owners = assign_files({100, 1, 1, 1}, 2, Balance::kSize);
  EXPECT_EQ(owners[0], 0);
  EXPECT_EQ(files_of_rank(owners, 1), (std::vector<size_t>{1, 2, 3}));
}

TEST(PlanTest, SizeBalanceLoadsStayWithinTheLargestFile) {
  std::vector<uint64_t> sizes;
  for (uint64_t i = 1; i <= 50; ++i) sizes.push_back((i * 7919) % 1000 + 1);
  auto owners = assign_files(sizes, 4, Balance::kSize);
  std::vector<uint64_t> load(4, 0);
  for (size_t i = 0; i < sizes.size(); ++i) load[static_cast<size_t>(owners[i])] += sizes[i];
  uint64_t biggest = *std::max_element(sizes.begin(), sizes.end());
  EXPECT_LE(*std::max_element(load.begin(), load.end()) - *std::min_element(load.begin(), load.end()), biggest);
}

TEST(PlanTest, EveryFileHasExactlyOneOwnerAndPlansAreDeterministic) {
  std::vector<uint64_t> sizes = {3, 3, 3, 8, 1, 0, 12};
  for (Balance b : {Balance::kRoundRobin, Balance::kSize}) {
    auto owners = assign_files(sizes, 3, b);
    EXPECT_EQ(owners, assign_files(sizes, 3, b));
    size_t total = 0;
    for (int r = 0; r < 3; ++r) total += files_of_rank(owners, r).size();
    EXPECT_EQ(total, sizes.size());
  }
}

}  // namespace
}  // namespace recis_convert
