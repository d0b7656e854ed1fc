#include "recis_convert/sinks/writeback.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "test_files.h"

namespace recis_convert {
namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

int open_written(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  EXPECT_EQ(::write(fd, "data", 4), 4);
  return fd;
}

TEST(WritebackTest, FlushAllFsyncsAndClosesEveryFile) {
  testing::TempDir dir;
  WritebackQueue queue(2);  // more files than slots: add() waits for the thread instead of queueing them all
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) {
    const std::string path = dir.file("f" + std::to_string(i));
    fds.push_back(open_written(path));
    ASSERT_TRUE(queue.add(fds.back(), path));
  }
  ASSERT_TRUE(queue.flush_all());
  for (int fd : fds) EXPECT_FALSE(is_open(fd));
  EXPECT_EQ(testing::read_file(dir.file("f19")), "data");
  ASSERT_TRUE(queue.flush_all());  // idempotent
}

TEST(WritebackTest, DestructorClosesWithoutFlushing) {
  testing::TempDir dir;
  int a = open_written(dir.file("a"));
  {
    WritebackQueue queue(8);
    ASSERT_TRUE(queue.add(a, dir.file("a")));
  }
  EXPECT_FALSE(is_open(a));
}

TEST(WritebackTest, FsyncFailureNamesTheFile) {
  // A pipe cannot be fsynced (EINVAL): the error must name the file it was given for.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  WritebackQueue queue(8);
  ASSERT_TRUE(queue.add(fds[1], "the-file"));
  auto flushed = queue.flush_all();
  ::close(fds[0]);
  ASSERT_FALSE(flushed);
  EXPECT_EQ(flushed.error().code, ExitCode::kOutput);
  EXPECT_EQ(flushed.error().file, "the-file");

  // later files are refused with the same error (the rank stops copying) and their descriptors released
  testing::TempDir dir;
  int later = open_written(dir.file("later"));
  auto added = queue.add(later, dir.file("later"));
  ASSERT_FALSE(added);
  EXPECT_EQ(added.error().file, "the-file");
  EXPECT_FALSE(is_open(later));
}

TEST(WritebackStarterTest, StartsRangesWithoutChangingTheFileAndIgnoresWhatItCannotOpen) {
  testing::TempDir dir;
  const std::string content(1 << 16, 'x');
  testing::write_file(dir.file("shared"), content);
  {
    WritebackStarter starter;
    starter.start(dir.file("shared"), 0, 4096);
    starter.start(dir.file("shared"), 4096, content.size() - 4096);
    starter.start(dir.file("missing"), 0, 10);  // best effort: the final fsync reports failures
  }  // the destructor stops the thread, whatever is still queued
  EXPECT_EQ(testing::read_file(dir.file("shared")), content);
}

}  // namespace
}  // namespace recis_convert
