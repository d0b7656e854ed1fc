#include "recis_convert/mpi/rank_hosts.h"

#include <gtest/gtest.h>

namespace recis_convert {
namespace {

TEST(RankHostsTest, RanksAreGroupedByHostInTheOrderOfTheirFirstRank) {
  const std::vector<std::string> hosts{"n1", "n1", "n2", "n2", "n3", "n3"};
  EXPECT_EQ(ranks_on_hosts({2, 3, 4, 5}, hosts), "ranks 2, 3 (n2); ranks 4, 5 (n3)");
  EXPECT_EQ(ranks_on_hosts({4, 2, 5}, hosts), "ranks 4, 5 (n3); rank 2 (n2)");
  EXPECT_EQ(ranks_on_hosts({0}, hosts), "rank 0 (n1)");
  EXPECT_EQ(ranks_on_hosts({7}, hosts), "rank 7 (?)");  // a rank without a known host still names the rank
}

}  // namespace
}  // namespace recis_convert
