#include "recis_convert/plan/piece_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

namespace recis_convert {
namespace {

// Every piece is read once, by exactly one rank, and the ranks' counts differ by at most one.
TEST(PiecePlanTest, EveryPieceOnceAndBalanced) {
  const std::vector<uint64_t> counts = {1, 40, 3, 0, 7, 1};
  for (int ranks = 1; ranks <= 9; ++ranks) {
    std::map<std::pair<size_t, uint64_t>, int> seen;
    uint64_t least = UINT64_MAX, most = 0;
    for (int rank = 0; rank < ranks; ++rank) {
      uint64_t mine = 0;
      for (const PieceSpan& s : share_of_pieces(counts, ranks, rank)) {
        ASSERT_GT(s.count, 0u);
        ASSERT_LE(s.first + s.count, counts[s.file]);
        for (uint64_t p = s.first; p < s.first + s.count; ++p) ++seen[{s.file, p}];
        mine += s.count;
      }
      least = std::min(least, mine);
      most = std::max(most, mine);
    }
    EXPECT_EQ(seen.size(), 52u) << ranks;
    for (const auto& [piece, times] : seen) EXPECT_EQ(times, 1);
    EXPECT_LE(most - least, 1u) << ranks;
  }
}

TEST(PiecePlanTest, RanksWithoutPiecesGetNone) {
  EXPECT_TRUE(share_of_pieces({1}, 3, 1).empty());
  EXPECT_TRUE(share_of_pieces({}, 2, 0).empty());
  auto first = share_of_pieces({1}, 3, 0);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].count, 1u);
}

TEST(PiecePlanTest, ASpanCrossesFilesInOrder) {
  auto spans = share_of_pieces({2, 2, 2}, 2, 0);  // pieces 0..2 of 6: file 0 whole, file 1's first
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].file, 0u);
  EXPECT_EQ(spans[0].count, 2u);
  EXPECT_EQ(spans[1].file, 1u);
  EXPECT_EQ(spans[1].first, 0u);
  EXPECT_EQ(spans[1].count, 1u);
}

// The bytes each rank reads, by the plan (a piece: its share of the file's bytes).
std::vector<uint64_t> loads(const WorkPlan& plan, const std::vector<uint64_t>& sizes) {
  std::vector<uint64_t> out;
  for (const auto& items : plan.items) {
    uint64_t bytes = 0;
    for (const WorkItem& item : items) bytes += item.whole() ? sizes[item.file] : sizes[item.file] / item.pieces;
    out.push_back(bytes);
  }
  return out;
}

// The case: one file holds 80% of the bytes. Whole files at np 4 leave the largest rank ~3.2x the mean;
// pieces bring it within 1.15, with either balance.
TEST(WorkPlanTest, OneHugeFileIsSplitSoThatNoRankCarriesIt) {
  std::vector<uint64_t> sizes = {800u << 20};
  for (int i = 0; i < 8; ++i) sizes.push_back(25u << 20);
  for (Balance balance : {Balance::kRoundRobin, Balance::kSize}) {
    const WorkPlan whole = plan_work(sizes, 4, balance, 0);
    auto before = loads(whole, sizes);
    const WorkPlan split = plan_work(sizes, 4, balance, 16u << 20);
    auto after = loads(split, sizes);
    const double mean = 1000.0 * (1 << 20) / 4;
    EXPECT_GT(*std::max_element(before.begin(), before.end()) / mean, 3.0);
    EXPECT_LE(*std::max_element(after.begin(), after.end()) / mean, 1.15) << balance_name(balance);
    EXPECT_TRUE(split.split(0));
    EXPECT_EQ(split.pieces[0], 50u);
    for (size_t f = 1; f < sizes.size(); ++f) EXPECT_FALSE(split.split(f));
    // every piece once; the owner writes piece 0
    std::map<uint32_t, int> seen;
    for (int rank = 0; rank < 4; ++rank) {
      for (const WorkItem& item : split.pieces_of_rank(rank)) {
        ++seen[item.piece];
        if (item.piece == 0) {
          EXPECT_EQ(split.owners[0], rank);
        }
        EXPECT_TRUE(split.files_read_by(rank)[0]);
      }
    }
    EXPECT_EQ(seen.size(), 50u);
  }
}

TEST(WorkPlanTest, WholeFilesOnlyAtOneRankWithoutPiecesOrWithoutAHugeFile) {
  const std::vector<uint64_t> sizes = {100, 90, 80, 70};
  for (const auto& [ranks, piece] : {std::pair{1, 10}, std::pair{4, 0}, std::pair{2, 10}}) {
    const WorkPlan plan = plan_work(sizes, ranks, Balance::kRoundRobin, static_cast<uint64_t>(piece));
    EXPECT_EQ(plan.owners, assign_files(sizes, ranks, Balance::kRoundRobin));
    for (int rank = 0; rank < ranks; ++rank) {
      EXPECT_EQ(plan.whole_files_of_rank(rank), files_of_rank(plan.owners, rank));
      EXPECT_TRUE(plan.pieces_of_rank(rank).empty());
    }
  }
}

TEST(WorkPlanTest, RoundRobinKeepsTheWholeFilesRanks) {
  const std::vector<uint64_t> sizes = {10, 1000, 10, 10, 10};
  const WorkPlan plan = plan_work(sizes, 3, Balance::kRoundRobin, 100);
  EXPECT_EQ(plan.pieces[1], 10u);
  for (size_t f : {0u, 2u, 3u, 4u}) EXPECT_EQ(plan.owners[f], static_cast<int>(f % 3));
}

// A piece's window is whole checksum pieces, the windows tile the output in order, and some may be empty.
TEST(WorkPlanTest, PieceWindowsTileTheOutputInWholePieces) {
  for (uint64_t bytes : {0, 1, 99, 100, 101, 1234}) {
    for (uint32_t pieces : {2u, 3u, 7u, 20u}) {
      uint64_t next = 0;
      for (uint32_t k = 0; k < pieces; ++k) {
        const ByteWindow w = piece_window(bytes, 100, k, pieces);
        EXPECT_EQ(w.begin, next);
        EXPECT_LE(w.begin, w.end);
        if (w.end != bytes) {
          EXPECT_EQ(w.end % 100, 0u);
        }
        next = w.end;
      }
      EXPECT_EQ(next, bytes);
    }
  }
}

}  // namespace
}  // namespace recis_convert
