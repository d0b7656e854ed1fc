#include "recis_convert/sinks/trailing_hasher.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <vector>

#include "test_files.h"

namespace recis_convert {
namespace {

using testing::TempDir;

class TrailingHasherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    source_ = testing::pattern(100000, 4);
    testing::write_file(dir_.file("src"), source_);
    fd_ = ::open(dir_.file("src").c_str(), O_RDONLY);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override { ::close(fd_); }
  TempDir dir_;
  std::string source_;
  int fd_ = -1;
  const std::string name_ = "src";
  std::vector<char> window_ = std::vector<char>(4096);
};

TEST_F(TrailingHasherTest, HashesTheRangeAsTheCopyAdvances) {
  for (bool trail : {true, false}) {
    PieceChecksum checksum(0);
    TrailingHasher hasher(fd_, name_, 1000, 90000, window_.data(), window_.size(), checksum, trail);
    for (uint64_t copied = 3000; copied < 90000; copied += 3000) hasher.copied(copied);  // steps unlike the window
    ASSERT_TRUE(hasher.finish());
    EXPECT_EQ(checksum.digest(), Checksum::of(source_.data() + 1000, 90000)) << "trail " << trail;
  }
}

TEST_F(TrailingHasherTest, FinishAloneHashesEverything) {
  PieceChecksum checksum(8192);  // pieces cut across windows
  TrailingHasher hasher(fd_, name_, 0, 100000, window_.data(), window_.size(), checksum, true);
  ASSERT_TRUE(hasher.finish());
  PieceChecksum expected(8192);
  expected.update(source_.data(), source_.size());
  EXPECT_EQ(checksum.digest(), expected.digest());
}

TEST_F(TrailingHasherTest, ASourceShorterThanTheRangeIsBadInputNamingIt) {
  PieceChecksum checksum(0);
  TrailingHasher hasher(fd_, name_, 50000, 60000, window_.data(), window_.size(), checksum, true);
  auto done = hasher.finish();
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().code, ExitCode::kBadInput);
  EXPECT_EQ(done.error().file, "src");
  EXPECT_NE(done.error().message.find("the file ends at byte 100000"), std::string::npos) << done.error().message;
}

TEST_F(TrailingHasherTest, AnAbandonedHasherStopsAndJoins) {
  // the copy failed half way: the destructor stops the thread, which waits for a copy that never comes
  PieceChecksum checksum(0);
  {
    TrailingHasher hasher(fd_, name_, 0, 100000, window_.data(), window_.size(), checksum, true);
    hasher.copied(20000);
  }
  SUCCEED();
}

}  // namespace
}  // namespace recis_convert
