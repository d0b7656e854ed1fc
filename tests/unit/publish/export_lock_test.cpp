#include "recis_convert/publish/export_lock.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "test_files.h"

namespace recis_convert {
namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// fcntl locks belong to a process: a second run is a second process
int try_in_child(const std::string& export_dir) {
  const pid_t child = ::fork();
  if (child == 0) _exit(ExportLock::acquire(export_dir) ? 0 : static_cast<int>(ExitCode::kOutput));
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(ExportLockTest, ASecondRunIsRefusedWhileTheFirstHoldsIt) {
  const testing::TempDir parent_dir;  // removed with what the children left in it
  const std::string parent = parent_dir.path();
  const std::string export_dir = parent + "/serve";
  {
    auto held = ExportLock::acquire(export_dir);
    ASSERT_TRUE(held) << held.error().describe();
    EXPECT_TRUE(exists(parent + "/.serve.recis-lock"));
    EXPECT_EQ(try_in_child(export_dir), static_cast<int>(ExitCode::kOutput));
    EXPECT_EQ(try_in_child(parent + "/other"), 0);  // another export is another lock
  }
  EXPECT_FALSE(exists(parent + "/.serve.recis-lock"));  // released and removed
  EXPECT_EQ(try_in_child(export_dir), 0);
}

TEST(ExportLockTest, TheRefusalNamesTheHolder) {
  const testing::TempDir parent_dir;  // removed with what the children left in it
  const std::string parent = parent_dir.path();
  auto held = ExportLock::acquire(parent + "/serve/");
  ASSERT_TRUE(held);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    auto second = ExportLock::acquire(parent + "/serve");
    const std::string message = second ? "" : second.error().message;
    (void)!::write(pipe_fds[1], message.data(), message.size());
    _exit(0);
  }
  ::close(pipe_fds[1]);
  char text[512] = {0};
  (void)!::read(pipe_fds[0], text, sizeof text - 1);
  ::waitpid(child, nullptr, 0);
  EXPECT_NE(std::string(text).find("another recis-convert run is exporting here (pid " + std::to_string(::getpid())),
            std::string::npos) << text;
}

TEST(ExportLockTest, ALockFileLeftByAKilledRunIsTakenOver) {
  const testing::TempDir parent_dir;  // removed with what the children left in it
  const std::string parent = parent_dir.path();
  const pid_t child = ::fork();
  if (child == 0) {
    auto held = ExportLock::acquire(parent + "/serve");
    ::kill(::getpid(), SIGKILL);  // dies holding it: the file stays, the lock goes
  }
  ::waitpid(child, nullptr, 0);
  EXPECT_TRUE(exists(parent + "/.serve.recis-lock"));
  {
    auto taken = ExportLock::acquire(parent + "/serve");
    EXPECT_TRUE(taken) << taken.error().describe();
  }
  EXPECT_FALSE(exists(parent + "/.serve.recis-lock"));
}

}  // namespace
}  // namespace recis_convert
