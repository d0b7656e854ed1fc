#include "recis_convert/common/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "recis_convert/formats/strict_json.h"
#include "test_files.h"

namespace recis_convert {
namespace {

using testing::TempDir;

// Opening a FIFO for reading blocks until a writer comes: an input that is not a regular file is refused by type.
TEST(FileIoTest, FifoIsRefusedWithoutBlocking) {
  TempDir dir;
  const std::string fifo = dir.file("fg.json");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto opened = open_input_file(fifo);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ExitCode::kBadInput);
  EXPECT_EQ(opened.error().describe(), fifo + ": is a FIFO, not a regular file");
  auto text = read_small_file(fifo, 1 << 20);
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().message, "is a FIFO, not a regular file");
}

TEST(FileIoTest, DirectoryAndDeviceAreRefused) {
  TempDir dir;
  EXPECT_EQ(open_input_file(dir.path()).error().message, "is a directory, not a regular file");
  EXPECT_EQ(open_input_file("/dev/zero").error().message, "is a character device, not a regular file");
  EXPECT_EQ(file_type_problem("/dev/null"), "is a character device, not a regular file");
}

TEST(FileIoTest, RegularFileOpensBlockingAndReads) {
  TempDir dir;
  testing::write_file(dir.file("a"), "abc");
  auto opened = open_input_file(dir.file("a"));
  ASSERT_TRUE(opened) << opened.error().describe();
  EXPECT_EQ(::fcntl(opened.value().get(), F_GETFL) & O_NONBLOCK, 0);
  char bytes[3];
  ASSERT_TRUE(read_exact(opened.value().get(), 0, 3, bytes, "a", "bytes"));
  EXPECT_EQ(std::string(bytes, 3), "abc");
  EXPECT_EQ(open_input_file(dir.file("missing")).error().message, "cannot open: No such file or directory");
}

TEST(FileIoTest, OversizedFileIsRefusedBeforeItIsRead) {
  TempDir dir;
  const std::string path = dir.file("tensorkey.json");
  testing::write_file(path, "{}");
  ASSERT_EQ(::truncate(path.c_str(), 1 << 30), 0);  // sparse: 1 GiB that is never read
  auto text = read_small_file(path, 1 << 20);
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().message, "larger than 1048576 bytes");
}

TEST(FileIoTest, StampMovesWhenAFileIsRewrittenInPlace) {
  TempDir dir;
  const std::string path = dir.file("model-0.safetensors");
  testing::write_file(path, "0123456789");
  auto opened = open_input_file(path);
  ASSERT_TRUE(opened);
  auto before = stamp_of(opened.value().get(), path);
  ASSERT_TRUE(before);
  EXPECT_EQ(before.value().size, 10u);
  EXPECT_TRUE(check_unchanged(before.value(), before.value(), path));
  // the same size, other bytes, a later modification time (set explicitly: the clock may not tick in between)
  testing::write_file(path, "9876543210");
  const struct timespec later[2] = {{0, UTIME_OMIT}, {before.value().mtime_ns / 1000000000 + 5, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), later, 0), 0);
  auto after = stamp_of(opened.value().get(), path);
  ASSERT_TRUE(after);
  auto unchanged = check_unchanged(before.value(), after.value(), path);
  ASSERT_FALSE(unchanged);
  EXPECT_EQ(unchanged.error().code, ExitCode::kBadInput);
  EXPECT_EQ(unchanged.error().describe(),
            path + ": file changed as we read it: its modification time moved (rewritten in place?)");
  FileStamp shorter = before.value();
  shorter.size = 4;
  EXPECT_EQ(check_unchanged(before.value(), shorter, path).error().message,
            "file changed as we read it: its size went from 10 to 4 bytes");
}

TEST(FileIoTest, OpenInputsOpensEachFileOnceAndRefusesByType) {
  TempDir dir;
  testing::write_file(dir.file("a"), "abc");
  OpenInputs inputs;
  auto first = inputs.fd(dir.file("a"));
  ASSERT_TRUE(first);
  EXPECT_EQ(inputs.fd(dir.file("a")).value(), first.value());
  EXPECT_EQ(inputs.fd(dir.path()).error().message, "is a directory, not a regular file");
  EXPECT_EQ(inputs.files().size(), 1u);
  inputs.clear();
  EXPECT_TRUE(inputs.files().empty());
}

TEST(FileIoTest, SplitPathGivesParentAndBase) {
  EXPECT_EQ(split_path("/data/serve/v1").parent, "/data/serve");
  EXPECT_EQ(split_path("/data/serve/v1/").base, "v1");  // trailing slashes ignored
  EXPECT_EQ(split_path("v1").parent, ".");
  EXPECT_EQ(split_path("/v1").parent, "/");
}

}  // namespace
}  // namespace recis_convert
