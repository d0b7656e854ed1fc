#include "recis_convert/publish/staging_reach.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "test_files.h"

namespace recis_convert {
namespace {

using testing::TempDir;

TEST(StagingReachTest, AStagingDirectoryThisRankReachesIsFine) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.file(".export.recis-staging.h.1").c_str(), 0755), 0);
  SerialComm comm;
  EXPECT_TRUE(check_staging_reaches_every_rank(comm, dir.file(".export.recis-staging.h.1"), dir.file("export")));
}

// As a rank on another node sees a staging directory on rank 0's node-local disk: not there.
TEST(StagingReachTest, ARankThatDoesNotSeeItIsNamedWithItsHost) {
  TempDir dir;
  SerialComm comm;
  auto reached = check_staging_reaches_every_rank(comm, dir.file(".export.recis-staging.h.1"), dir.file("export"));
  ASSERT_FALSE(reached);
  EXPECT_EQ(reached.error().code, ExitCode::kOutput);
  EXPECT_EQ(reached.error().file, dir.file("export"));
  EXPECT_NE(reached.error().message.find("rank 0 (localhost) cannot reach it (No such file or directory)"),
            std::string::npos)
      << reached.error().message;
}

TEST(StagingReachTest, AFileInItsPlaceIsNoStagingDirectory) {
  TempDir dir;
  testing::write_file(dir.file("staged"), "x");
  SerialComm comm;
  auto reached = check_staging_reaches_every_rank(comm, dir.file("staged"), dir.file("export"));
  ASSERT_FALSE(reached);
  EXPECT_NE(reached.error().message.find("not a directory"), std::string::npos);
}

}  // namespace
}  // namespace recis_convert
