#include "recis_convert/mpi/stall_watch.h"

#include <gtest/gtest.h>

namespace recis_convert {
namespace {

constexpr double kTimeout = 10;

Heartbeat working(uint64_t activity) { return Heartbeat{activity, 0, 0}; }
Heartbeat waiting(uint64_t activity) { return Heartbeat{activity, 1, 0}; }

TEST(StallWatchTest, RankZeroNamesTheRanksItHasNotHeardFromForTheTimeout) {
  StallWatch watch(0, 4, kTimeout, 0);
  EXPECT_FALSE(watch.judge(9.9));  // everyone gets a full timeout from the start
  watch.heard(1, working(1), 6);
  watch.heard(2, waiting(7), 9);
  auto stall = watch.judge(10);
  ASSERT_TRUE(stall);
  EXPECT_EQ(stall->silent, std::vector<int>{3});
  EXPECT_TRUE(stall->stuck.empty());
  watch.heard(3, working(1), 12);
  watch.heard(2, waiting(7), 15);
  EXPECT_FALSE(watch.judge(15.9));
  stall = watch.judge(16);  // rank 1 last heard at 6
  ASSERT_TRUE(stall);
  EXPECT_EQ(stall->silent, std::vector<int>{1});
}

// Ranks cut off together fall silent a heartbeat apart: once one has been silent for the timeout, every rank
// silent for half of it is named with it; a rank heard recently is not.
TEST(StallWatchTest, RanksSilentForHalfTheTimeoutAreNamedWithTheFirst) {
  StallWatch watch(0, 4, kTimeout, 0);
  watch.heard(1, waiting(1), 20);
  watch.heard(2, waiting(1), 21);
  watch.heard(3, waiting(1), 29);
  EXPECT_FALSE(watch.judge(29.9));  // rank 1 is silent for 9.9 s and rank 2 for 8.9 s: neither for the timeout
  auto stall = watch.judge(30);
  ASSERT_TRUE(stall);
  EXPECT_EQ(stall->silent, (std::vector<int>{1, 2}));
}

TEST(StallWatchTest, AWorkingRankWhoseWorkDoesNotMoveIsStuckAWaitingOneIsNot) {
  StallWatch watch(0, 3, kTimeout, 0);
  for (double t = 0; t <= 12; t += 1) {
    watch.heard(1, working(42), t);          // heard, but its work stands still
    watch.heard(2, waiting(5), t);           // waits in a collective for the others: fine
  }
  auto stall = watch.judge(12);
  ASSERT_TRUE(stall);
  EXPECT_TRUE(stall->silent.empty());
  EXPECT_EQ(stall->stuck, std::vector<int>{1});
  EXPECT_FALSE(stall->everyone_waiting);
}

TEST(StallWatchTest, WorkThatMovesOrAChangeOfStateIsProgress) {
  StallWatch watch(0, 2, kTimeout, 0);
  for (double t = 0; t <= 30; t += 1) watch.heard(1, working(static_cast<uint64_t>(t)), t);
  EXPECT_FALSE(watch.judge(30));
  watch.heard(1, waiting(30), 31);  // entered a collective: moved
  watch.heard(1, working(30), 40);  // left it without new activity: moved too
  EXPECT_FALSE(watch.judge(45));
  EXPECT_TRUE(watch.judge(50));
}

TEST(StallWatchTest, OtherRanksWatchOnlyRankZero) {
  StallWatch watch(2, 4, kTimeout, 0);
  watch.heard(0, waiting(1), 8);
  EXPECT_FALSE(watch.judge(17));  // ranks 1 and 3 are not this rank's to judge
  auto stall = watch.judge(18);
  ASSERT_TRUE(stall);
  EXPECT_EQ(stall->silent, std::vector<int>{0});
  watch.heard(0, working(1), 18);  // rank 0 is not judged for progress by the others
  EXPECT_FALSE(watch.judge(27));
}

TEST(StallWatchTest, EveryRankWaitingWithNothingMovingIsAStall) {
  StallWatch watch(0, 3, kTimeout, 0);
  for (double t = 0; t <= 20; t += 1) {
    watch.self(waiting(3), t);
    watch.heard(1, waiting(4), t);
    if (t < 5) watch.heard(2, working(static_cast<uint64_t>(t)), t);
    else watch.heard(2, waiting(5), t);
  }
  EXPECT_FALSE(watch.judge(14.9));  // rank 2 moved last at 5
  auto stall = watch.judge(15);
  ASSERT_TRUE(stall);
  EXPECT_TRUE(stall->everyone_waiting);
  EXPECT_EQ(stall->stuck, (std::vector<int>{0, 1, 2}));
}

TEST(StallWatchTest, ARankThatSaidGoodbyeIsNotJudged) {
  StallWatch watch(0, 2, kTimeout, 0);
  watch.heard(1, Heartbeat{9, 0, 1}, 1);
  EXPECT_FALSE(watch.judge(100));
}

TEST(StallWatchTest, TheLineNamesRanksGroupedByHost) {
  Stall stall;
  stall.silent = {4, 5};
  stall.stuck = {2};
  const std::vector<std::string> hosts{"n1", "n1", "n2", "n2", "n3", "n3"};
  EXPECT_EQ(describe_stall(stall, 30, hosts),
            "stalled: no word for 30.00 s from ranks 4, 5 (n3); no progress for 30.00 s from rank 2 (n2)");
  Stall everyone;
  everyone.stuck = {0, 1};
  everyone.everyone_waiting = true;
  EXPECT_EQ(describe_stall(everyone, 30, {"a", "b"}),
            "stalled: every rank has waited in a collective for 30.00 s and none completed");
}

}  // namespace
}  // namespace recis_convert
