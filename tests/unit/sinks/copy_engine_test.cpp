#include "recis_convert/sinks/copy_engine.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "recis_convert/common/checksum.h"
#include "test_files.h"

namespace recis_convert {
namespace {

using testing::TempDir;

class CopyEngineTest : public ::testing::TestWithParam<CopyMethod> {
 protected:
  // Writes `plan` from a source holding `source` bytes; returns the output bytes (or the error text).
  std::string run(const std::string& source, const FileLayout& plan, size_t buffer, Result<CopyOutcome>* outcome) {
    testing::write_file(dir_.file("src"), source);
    int src = ::open(dir_.file("src").c_str(), O_RDONLY);
    int dst = ::open(dir_.file("dst").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CopyEngine engine(buffer, GetParam(), 0);
    *outcome = engine.write(src, "src", dst, "dst", plan);
    ::close(src);
    ::close(dst);
    return testing::read_file(dir_.file("dst"));
  }
  TempDir dir_;
};

TEST_P(CopyEngineTest, CopiesPreambleAndRangesThroughASmallBuffer) {
  std::string source = testing::pattern(300000, 5);
  FileLayout plan;
  plan.preamble = "HEADER--";
  plan.ranges = {{0, 10000}, {150000, 100001}, {299999, 1}};
  Result<CopyOutcome> outcome = Error{};
  std::string out = run(source, plan, 4096, &outcome);
  ASSERT_TRUE(outcome) << outcome.error().describe();
  std::string expected = "HEADER--" + source.substr(0, 10000) + source.substr(150000, 100001) + source.substr(299999);
  EXPECT_EQ(out, expected);
  EXPECT_EQ(outcome.value().bytes_written, expected.size());
  EXPECT_EQ(outcome.value().checksum, Checksum::of(expected.data(), expected.size()));
}

TEST_P(CopyEngineTest, SourceShorterThanPlannedIsBadInput) {
  std::string source = testing::pattern(5000, 1);
  FileLayout plan;
  plan.ranges = {{0, 8000}};
  Result<CopyOutcome> outcome = Error{};
  run(source, plan, 4096, &outcome);
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

INSTANTIATE_TEST_SUITE_P(Methods, CopyEngineTest,
                         ::testing::Values(CopyMethod::kAuto, CopyMethod::kKernel, CopyMethod::kBuffered),
                         [](const ::testing::TestParamInfo<CopyMethod>& param_info) {
                           return std::string(param_info.param == CopyMethod::kBuffered ? "Buffered"
                                              : param_info.param == CopyMethod::kKernel ? "Kernel"
                                                                                  : "Auto");
                         });

TEST(CopyEngineFailureTest, WriteErrorIsAnOutputErrorNamingTheDestination) {
  TempDir dir;
  testing::write_file(dir.file("src"), testing::pattern(10000, 2));
  int src = ::open(dir.file("src").c_str(), O_RDONLY);
  int dst = ::open("/dev/full", O_WRONLY);
  ASSERT_GE(dst, 0);
  FileLayout plan;
  plan.preamble = "x";
  plan.ranges = {{0, 10000}};
  CopyEngine engine(4096, CopyMethod::kBuffered, 0);
  auto outcome = engine.write(src, "src", dst, "/dev/full", plan);
  ::close(src);
  ::close(dst);
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.error().code, ExitCode::kOutput);
  EXPECT_EQ(outcome.error().file, "/dev/full");
}

}  // namespace
}  // namespace recis_convert
