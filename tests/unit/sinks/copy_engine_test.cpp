#include "recis_convert/sinks/copy_engine.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "recis_convert/common/checksum.h"
#include "test_files.h"

namespace recis_convert {
namespace {

using testing::TempDir;

// Each path, with a window of 4 KiB in a buffer of 16 KiB, so that ranges of more than two windows go through the
// TrailingHasher's thread and smaller ones are hashed inline.
class CopyEngineTest : public ::testing::TestWithParam<CopyPath> {
 protected:
  // Writes `plan` from a source holding `source` bytes; returns the output bytes (or the error text).
  std::string run(const std::string& source, const FileLayout& plan, size_t buffer, Result<CopyOutcome>* outcome) {
    testing::write_file(dir_.file("src"), source);
    int src = ::open(dir_.file("src").c_str(), O_RDONLY);
    int dst = ::open(dir_.file("dst").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CopyEngine engine(buffer, GetParam(), 0, 4096);
    *outcome = engine.write(src, "src", dst, "dst", plan);
    path_after_ = engine.path();
    ::close(src);
    ::close(dst);
    return testing::read_file(dir_.file("dst"));
  }
  TempDir dir_;
  CopyPath path_after_ = CopyPath::kBuffered;
};

TEST_P(CopyEngineTest, CopiesPreambleAndRangesThroughASmallBuffer) {
  std::string source = testing::pattern(300000, 5);
  FileLayout plan;
  plan.preamble = "HEADER--";
  plan.ranges = {{0, 10000}, {150000, 100001}, {299999, 1}};
  Result<CopyOutcome> outcome = Error{};
  std::string out = run(source, plan, 16384, &outcome);
  ASSERT_TRUE(outcome) << outcome.error().describe();
  EXPECT_EQ(path_after_, GetParam());  // one file system: the kernel did not refuse
  std::string expected = "HEADER--" + source.substr(0, 10000) + source.substr(150000, 100001) + source.substr(299999);
  EXPECT_EQ(out, expected);
  EXPECT_EQ(outcome.value().bytes_written, expected.size());
  EXPECT_EQ(outcome.value().checksum, Checksum::of(expected.data(), expected.size()));
}

TEST_P(CopyEngineTest, SourceShorterThanPlannedIsBadInput) {
  std::string source = testing::pattern(5000, 1);
  FileLayout plan;
  plan.ranges = {{0, 80000}};  // more than two windows: the hashing thread meets the end too
  Result<CopyOutcome> outcome = Error{};
  run(source, plan, 16384, &outcome);
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.error().code, ExitCode::kBadInput);
  EXPECT_EQ(outcome.error().file, "src");
  EXPECT_NE(outcome.error().message.find("shrank"), std::string::npos);
}

TEST_P(CopyEngineTest, EmptyPlanWritesNothing) {
  FileLayout plan;
  Result<CopyOutcome> outcome = Error{};
  std::string out = run("abc", plan, 4096, &outcome);
  ASSERT_TRUE(outcome);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(outcome.value().checksum, Checksum::of("", 0));
}

TEST_P(CopyEngineTest, PiecesOfAWindowChecksumAsTheWholeFile) {
  // a long range in three windows of output, as three ranks would write them: their pieces join to the whole's
  const std::string source = testing::pattern(200000, 9);
  testing::write_file(dir_.file("src"), source);
  FileLayout plan;
  plan.preamble = std::string(100, 'h');
  plan.ranges = {{0, 200000}};
  const uint64_t piece = 32768;
  std::vector<uint64_t> pieces;
  int src = ::open(dir_.file("src").c_str(), O_RDONLY);
  int dst = ::open(dir_.file("dst").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CopyEngine engine(16384, GetParam(), piece, 4096);
  const std::vector<uint64_t> bounds = {0, 3 * piece, 5 * piece, plan.output_bytes()};
  for (size_t i = 0; i + 1 < bounds.size(); ++i) {
    auto got = engine.write_window(src, "src", dst, "dst", plan, bounds[i], bounds[i + 1]);
    ASSERT_TRUE(got) << got.error().describe();
    pieces.insert(pieces.end(), got.value().begin(), got.value().end());
  }
  ::close(src);
  ::close(dst);
  const std::string out = testing::read_file(dir_.file("dst"));
  EXPECT_EQ(out, plan.preamble + source);
  PieceChecksum whole(piece);
  whole.update(out.data(), out.size());
  EXPECT_EQ(PieceChecksum::combine(pieces), whole.digest());
}

TEST_P(CopyEngineTest, HashingOnSeveralCpusGivesTheSameChecksum) {
  // ranges of several whole pieces: on kernel-extents, hashed by pieces on helper threads
  const std::string source = testing::pattern(300000, 11);
  FileLayout plan;
  plan.preamble = std::string(777, 'p');
  plan.ranges = {{5, 150000}, {160000, 3000}, {170000, 129000}};
  const uint64_t piece = 20000;
  std::string expected = plan.preamble + source.substr(5, 150000) + source.substr(160000, 3000) +
                         source.substr(170000, 129000);
  PieceChecksum whole(piece);
  whole.update(expected.data(), expected.size());
  for (unsigned cpus : {1, 2, 4}) {
    testing::write_file(dir_.file("src"), source);
    int src = ::open(dir_.file("src").c_str(), O_RDONLY);
    int dst = ::open(dir_.file("dst").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CopyEngine engine(16384, GetParam(), piece, 4096);
    engine.set_hashing_cpus(cpus);
    auto outcome = engine.write(src, "src", dst, "dst", plan);
    ::close(src);
    ::close(dst);
    ASSERT_TRUE(outcome) << outcome.error().describe();
    EXPECT_EQ(testing::read_file(dir_.file("dst")), expected) << cpus;
    EXPECT_EQ(outcome.value().checksum, whole.digest()) << cpus;
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, CopyEngineTest,
                         ::testing::Values(CopyPath::kKernelWindows, CopyPath::kKernelExtents, CopyPath::kBuffered),
                         [](const ::testing::TestParamInfo<CopyPath>& param_info) {
                           std::string name = copy_path_name(param_info.param);
                           name.erase(std::remove(name.begin(), name.end(), '-'), name.end());
                           return name;
                         });

TEST(CopyEngineFallbackTest, ARefusedKernelCopyFallsBackToBufferedAndSaysWhy) {
  // copy_file_range refuses an output opened with O_APPEND (EBADF), as it refuses other file systems (EXDEV);
  // kernel-extents with pieces takes its parallel hashing path (several pieces) and must fall back from it too
  for (auto [path, piece] : {std::pair<CopyPath, uint64_t>{CopyPath::kKernelWindows, 0},
                             std::pair<CopyPath, uint64_t>{CopyPath::kKernelExtents, 8192}}) {
    TempDir dir;
    const std::string source = testing::pattern(50000, 3);
    testing::write_file(dir.file("src"), source);
    int src = ::open(dir.file("src").c_str(), O_RDONLY);
    int dst = ::open(dir.file("dst").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    FileLayout plan;
    plan.ranges = {{0, 50000}};
    CopyEngine engine(16384, path, piece, 4096);
    engine.set_hashing_cpus(2);
    EXPECT_TRUE(engine.fallback().empty());
    auto outcome = engine.write(src, "src", dst, "dst", plan);
    ::close(src);
    ::close(dst);
    ASSERT_TRUE(outcome) << outcome.error().describe();
    EXPECT_EQ(testing::read_file(dir.file("dst")), source) << copy_path_name(path);
    PieceChecksum expected(piece);
    expected.update(source.data(), source.size());
    EXPECT_EQ(outcome.value().checksum, expected.digest()) << copy_path_name(path);
    EXPECT_EQ(engine.path(), CopyPath::kBuffered);
    EXPECT_NE(engine.fallback().find("copy_file_range refused"), std::string::npos) << engine.fallback();
  }
}

TEST(CopyEngineFailureTest, WriteErrorIsAnOutputErrorNamingTheDestination) {
  TempDir dir;
  testing::write_file(dir.file("src"), testing::pattern(10000, 2));
  int src = ::open(dir.file("src").c_str(), O_RDONLY);
  int dst = ::open("/dev/full", O_WRONLY);
  ASSERT_GE(dst, 0);
  FileLayout plan;
  plan.preamble = "x";
  plan.ranges = {{0, 10000}};
  CopyEngine engine(4096, CopyPath::kBuffered, 0);
  auto outcome = engine.write(src, "src", dst, "/dev/full", plan);
  ::close(src);
  ::close(dst);
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.error().code, ExitCode::kOutput);
  EXPECT_EQ(outcome.error().file, "/dev/full");
}

}  // namespace
}  // namespace recis_convert
