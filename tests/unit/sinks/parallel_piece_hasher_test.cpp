#include "recis_convert/sinks/parallel_piece_hasher.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <vector>

#include "recis_convert/common/checksum.h"
#include "recis_convert/plan/eviction_plan.h"
#include "test_files.h"

namespace recis_convert {
namespace {

using testing::TempDir;

class ParallelPieceHasherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    source_ = testing::pattern(100000, 6);
    testing::write_file(dir_.file("src"), source_);
    fd_ = ::open(dir_.file("src").c_str(), O_RDONLY);
    ASSERT_GE(fd_, 0);
    plan_.preamble = std::string(1234, 'h');
    plan_.ranges = {{10, 30000}, {40000, 5}, {50000, 45000}};
    output_ = plan_.preamble + source_.substr(10, 30000) + source_.substr(40000, 5) + source_.substr(50000, 45000);
  }
  void TearDown() override { ::close(fd_); }
  // PieceChecksum::pieces() of output bytes [begin, end)
  std::vector<uint64_t> expected(uint64_t begin, uint64_t end, uint64_t piece) const {
    PieceChecksum checksum(piece);
    checksum.update(output_.data() + begin, end - begin);
    return checksum.pieces();
  }
  TempDir dir_;
  std::string source_;
  int fd_ = -1;
  const std::string name_ = "src";
  FileLayout plan_;
  std::string output_;
  std::vector<char> memory_ = std::vector<char>(16384);
};

TEST_F(ParallelPieceHasherTest, HashesEachPieceAsOneStreamWould) {
  const uint64_t size = output_.size();
  for (uint64_t piece : {1000, 4096, 30000, 100000}) {
    for (uint64_t begin : {uint64_t{0}, piece, 3 * piece}) {
      if (begin > size) continue;
      for (uint64_t end : {size, std::min(size, begin + 2 * piece), begin}) {
        for (unsigned helpers : {0, 1, 3, 8}) {
          ParallelPieceHasher hasher(fd_, name_, plan_, begin, end, piece, memory_.data(), memory_.size(), helpers);
          auto got = hasher.finish();
          ASSERT_TRUE(got) << got.error().describe();
          EXPECT_EQ(got.value(), expected(begin, end, piece)) << piece << " " << begin << " " << end << " " << helpers;
        }
      }
    }
  }
}

TEST_F(ParallelPieceHasherTest, OnlyUnchangedBytesAreHashableFromTheSource) {
  EXPECT_TRUE(ParallelPieceHasher::hashable_from_source(plan_, 0, output_.size()));
  FileLayout plan = plan_;
  auto selection = std::make_shared<PartSelection>();
  selection->rows = selection->kept = 2;
  plan.ranges[1] = CopyRange(40000, 8, nullptr, 2, selection);  // rows selected (eviction)
  const uint64_t at = plan.preamble.size() + 30000;  // the selected range's first output byte
  EXPECT_FALSE(ParallelPieceHasher::hashable_from_source(plan, 0, output_.size()));
  EXPECT_FALSE(ParallelPieceHasher::hashable_from_source(plan, at, at + 1));
  EXPECT_TRUE(ParallelPieceHasher::hashable_from_source(plan, 0, at));
  EXPECT_TRUE(ParallelPieceHasher::hashable_from_source(plan, at + plan.ranges[1].output_length(), output_.size()));
}

TEST_F(ParallelPieceHasherTest, ASourceShorterThanThePlanIsBadInputAtItsFirstMissingByte) {
  // pieces of 1000 over a source of 100000 read from 50000 on: every piece past its end fails; the first is reported
  FileLayout plan;
  plan.ranges = {{50000, 100000}};
  for (int run = 0; run < 20; ++run) {
    ParallelPieceHasher hasher(fd_, name_, plan, 0, 100000, 1000, memory_.data(), memory_.size(), 3);
    auto done = hasher.finish();
    ASSERT_FALSE(done);
    EXPECT_EQ(done.error().code, ExitCode::kBadInput);
    EXPECT_EQ(done.error().file, "src");
    EXPECT_NE(done.error().message.find("the file ends at byte 100000"), std::string::npos) << done.error().message;
  }
}

TEST_F(ParallelPieceHasherTest, AnAbandonedHasherStopsItsThreads) {
  std::optional<ParallelPieceHasher> hasher;
  hasher.emplace(fd_, name_, plan_, 0, output_.size(), 1000, memory_.data(), memory_.size(), 4);
  hasher.reset();  // joins without finish(): the copy failed
  SUCCEED();
}

}  // namespace
}  // namespace recis_convert
