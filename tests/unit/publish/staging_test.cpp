#include "recis_convert/publish/staging.h"

#include <algorithm>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_files.h"

namespace recis_convert {
namespace {

using testing::path_exists;
using testing::TempDir;

std::string host() {
  char name[256] = {0};
  ::gethostname(name, sizeof name - 1);
  return name;
}

TEST(StagingTest, PublishMovesTheStagingDirectoryIntoPlace) {
  TempDir dir;
  const std::string out = dir.file("export");
  auto staging = StagingDir::create(out, false, nullptr);
  ASSERT_TRUE(staging) << staging.error().describe();
  const std::string path = staging.value().path();
  EXPECT_EQ(path.rfind(dir.path() + "/.export.recis-staging.", 0), 0u);
  testing::write_file(path + "/a", "x");
  ASSERT_TRUE(staging.value().publish(false));
  EXPECT_EQ(testing::read_file(out + "/a"), "x");
  EXPECT_FALSE(path_exists(path));
}

TEST(StagingTest, DestroyingWithoutPublishRemovesEverything) {
  TempDir dir;
  std::string path;
  {
    auto staging = StagingDir::create(dir.file("export"), false, nullptr);
    ASSERT_TRUE(staging);
    path = staging.value().path();
    ::mkdir((path + "/sub").c_str(), 0755);
    testing::write_file(path + "/sub/a", "x");
  }
  EXPECT_FALSE(path_exists(path));
  EXPECT_FALSE(path_exists(dir.file("export")));
}

TEST(StagingTest, ExistingExportIsAnOutputErrorWithoutOverwrite) {
  TempDir dir;
  ::mkdir(dir.file("export").c_str(), 0755);
  auto staging = StagingDir::create(dir.file("export"), false, nullptr);
  ASSERT_FALSE(staging);
  EXPECT_EQ(staging.error().code, ExitCode::kOutput);
  EXPECT_NE(staging.error().message.find("--overwrite"), std::string::npos);
}

TEST(StagingTest, ExportAppearingDuringTheRunIsNotClobbered) {
  TempDir dir;
  auto staging = StagingDir::create(dir.file("export"), false, nullptr);
  ASSERT_TRUE(staging);
  ::mkdir(dir.file("export").c_str(), 0755);
  testing::write_file(dir.file("export/theirs"), "keep");
  auto published = staging.value().publish(false);
  ASSERT_FALSE(published);
  EXPECT_EQ(published.error().code, ExitCode::kOutput);
  EXPECT_EQ(testing::read_file(dir.file("export/theirs")), "keep");
}

TEST(StagingTest, OverwriteSwapsInTheNewExportAndRemovesTheOld) {
  TempDir dir;
  ::mkdir(dir.file("export").c_str(), 0755);
  testing::write_file(dir.file("export/old"), "old");
  auto staging = StagingDir::create(dir.file("export"), true, nullptr);
  ASSERT_TRUE(staging);
  testing::write_file(staging.value().path() + "/new", "new");
  ASSERT_TRUE(staging.value().publish(true));
  EXPECT_TRUE(path_exists(dir.file("export/new")));
  EXPECT_FALSE(path_exists(dir.file("export/old")));
  EXPECT_FALSE(path_exists(staging.value().path()));
}

TEST(StagingTest, MissingParentIsAnOutputError) {
  auto staging = StagingDir::create("/nonexistent-parent/export", false, nullptr);
  ASSERT_FALSE(staging);
  EXPECT_EQ(staging.error().code, ExitCode::kOutput);
}

// A run holds the export's lock for its staging directory's life, so once the next run holds it, every run's
// staging directory beside the export is a dead run's, whichever host made it and whatever its pid is now (the pid
// of a run on another node may be alive here, as another process). --resume's directory and other names stay.
TEST(StagingTest, WithTheLockHeldEveryOtherRunsStagingIsADeadRunsOnAnyHost) {
  TempDir dir;
  const std::string same_host = dir.file(".export.recis-staging." + host() + ".4194305");
  const std::string live_pid = dir.file(".export.recis-staging." + host() + "." + std::to_string(::getppid()));
  const std::string other_host = dir.file(".export.recis-staging.recis-node3.17");
  const std::string resume = dir.file(".export.recis-staging.resume");
  const std::string aside = dir.file(".export.recis-staging.recis-node3.17.old");
  const std::string other_export = dir.file(".other.recis-staging.recis-node3.17");
  for (const auto& d : {same_host, live_pid, other_host, resume, aside, other_export}) ::mkdir(d.c_str(), 0755);
  std::vector<std::string> removed;
  auto staging = StagingDir::create(dir.file("export"), false, &removed);
  ASSERT_TRUE(staging) << staging.error().describe();
  std::sort(removed.begin(), removed.end());
  std::vector<std::string> expected{same_host, live_pid, other_host};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(removed, expected);
  for (const auto& d : {resume, aside, other_export, staging.value().path()}) EXPECT_TRUE(path_exists(d)) << d;
  EXPECT_TRUE(staging.value().remove_dead_runs().empty());  // its own directory is not a dead run's
  EXPECT_TRUE(path_exists(staging.value().path()));
}

// While a live run (another process) holds the lock, a second run is refused and removes nothing of it.
TEST(StagingTest, ALiveRunsStagingIsNotRemovedBecauseItsLockIsHeld) {
  TempDir dir;
  auto first = StagingDir::create(dir.file("export"), false, nullptr);
  ASSERT_TRUE(first);
  const pid_t child = ::fork();
  if (child == 0) _exit(StagingDir::create(dir.file("export"), false, nullptr) ? 0 : 1);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1);
  EXPECT_TRUE(path_exists(first.value().path()));
}

TEST(StagingTest, RemoveTreeDoesNotFollowSymlinks) {
  TempDir dir, outside;
  testing::write_file(outside.file("precious"), "keep");
  ::mkdir(dir.file("tree").c_str(), 0755);
  ASSERT_EQ(::symlink(outside.path().c_str(), dir.file("tree/link").c_str()), 0);
  EXPECT_TRUE(remove_tree(dir.file("tree")));
  EXPECT_EQ(testing::read_file(outside.file("precious")), "keep");
}

TEST(StagingTest, RealLocationResolvesTheExistingPartOfAPath) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.file("ckpt").c_str(), 0755), 0);
  ASSERT_EQ(::symlink(dir.file("ckpt").c_str(), dir.file("link").c_str()), 0);
  const std::string real = real_location(dir.path());
  EXPECT_EQ(real_location(dir.file("link/new/export")), real + "/ckpt/new/export");
  EXPECT_EQ(real_location(dir.file("link/new/../x")), real + "/ckpt/x");
  EXPECT_EQ(real_location(dir.file("link")), real + "/ckpt");
}

// The export (or a --report file, or a merge) never lands inside an input, nor holds one: not even through a
// symlinked parent, and not when it does not exist yet.
TEST(StagingTest, OutputsStayApartFromInputs) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.file("ckpt").c_str(), 0755), 0);
  ASSERT_EQ(::symlink(dir.file("ckpt").c_str(), dir.file("link").c_str()), 0);
  testing::write_file(dir.file("fg.json"), "{}");
  const std::vector<NamedPath> inputs{{dir.file("ckpt"), "the source checkpoint"}, {dir.file("fg.json"), "the fg config"}};
  EXPECT_TRUE(check_apart_from_inputs(dir.file("export"), inputs));
  EXPECT_TRUE(check_apart_from_inputs(dir.file("ckpt2"), inputs));  // a sibling sharing a prefix
  EXPECT_TRUE(check_apart_from_inputs("", inputs));                 // not given
  for (const std::string inside : {"ckpt/export", "link/export", "link/new/export", "ckpt/model-0.safetensors"}) {
    auto apart = check_apart_from_inputs(dir.file(inside), inputs);
    ASSERT_FALSE(apart) << inside;
    EXPECT_EQ(apart.error().code, ExitCode::kOutput);
    EXPECT_EQ(apart.error().describe(),
              dir.file(inside) + ": is inside the source checkpoint " + dir.file("ckpt") + "; refusing to write there");
  }
  for (const std::string holding : {"ckpt", "link", ".", "fg.json"}) {
    auto apart = check_apart_from_inputs(dir.file(holding), inputs);
    ASSERT_FALSE(apart) << holding;
    EXPECT_NE(apart.error().message.find("contains the "), std::string::npos) << apart.error().message;
  }
}

// A legal name (255 bytes) that leaves no room for the staging directory's suffix is the user's to shorten.
TEST(StagingTest, ExportNameWithoutRoomForStagingIsAUsageError) {
  TempDir dir;
  auto staging = StagingDir::create(dir.file(std::string(240, 'x')), false, nullptr);
  ASSERT_FALSE(staging);
  EXPECT_EQ(staging.error().code, ExitCode::kUsage);
  EXPECT_NE(staging.error().message.find("staging it beside the export needs"), std::string::npos);
  EXPECT_TRUE(StagingDir::create(dir.file(std::string(100, 'x')), false, nullptr));
}

}  // namespace
}  // namespace recis_convert
