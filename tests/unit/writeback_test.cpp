#include "recis_convert/writeback.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "test_files.h"

namespace recis_convert {
namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

int open_written(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  EXPECT_EQ(::write(fd, "data", 4), 4);
  return fd;
}

TEST(WritebackTest, KeepsAtMostMaxPendingFilesOpen) {
  testing::TempDir dir;
  WritebackQueue queue(2);
  int a = open_written(dir.file("a")), b = open_written(dir.file("b")), c = open_written(dir.file("c"));
  ASSERT_TRUE(queue.add(a, dir.file("a")));
  ASSERT_TRUE(queue.add(b, dir.file("b")));
  EXPECT_TRUE(is_open(a));
  ASSERT_TRUE(queue.add(c, dir.file("c")));
  EXPECT_FALSE(is_open(a));  // the oldest was fsynced and closed
  EXPECT_TRUE(is_open(b));
  ASSERT_TRUE(queue.flush_all());
  EXPECT_FALSE(is_open(b));
  EXPECT_FALSE(is_open(c));
  EXPECT_EQ(testing::read_file(dir.file("c")), "data");
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
}

}  // namespace
}  // namespace recis_convert
