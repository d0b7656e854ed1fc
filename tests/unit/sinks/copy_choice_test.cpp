#include "recis_convert/sinks/copy_choice.h"

#include <gtest/gtest.h>

#include "test_files.h"

namespace recis_convert {
namespace {

constexpr int64_t kTmpfs = 0x01021994, kExt4 = 0xEF53, kXfs = 0x58465342, kNfs = 0x6969;

TEST(CopyChoiceTest, AutoChoosesByTheFileSystems) {
  // one file system that copies data: the kernel copies in windows that are hashed from the cache
  EXPECT_EQ(choose_copy_path(CopyMethod::kAuto, {kTmpfs, 1}, {kTmpfs, 1}, 2).path, CopyPath::kKernelWindows);
  EXPECT_EQ(choose_copy_path(CopyMethod::kAuto, {kExt4, 7}, {kExt4, 7}, 2).path, CopyPath::kKernelWindows);
  // one that shares extents (reflink) or copies on the server: large chunks, the source hashed alongside
  const CopyChoice xfs = choose_copy_path(CopyMethod::kAuto, {kXfs, 3}, {kXfs, 3}, 2);
  EXPECT_EQ(xfs.path, CopyPath::kKernelExtents);
  EXPECT_NE(xfs.why.find("xfs"), std::string::npos) << xfs.why;
  EXPECT_EQ(choose_copy_path(CopyMethod::kAuto, {kNfs, 4}, {kNfs, 4}, 2).path, CopyPath::kKernelExtents);
  // two XFS mounts cannot share extents; two file systems: a read/write loop
  EXPECT_EQ(choose_copy_path(CopyMethod::kAuto, {kXfs, 3}, {kXfs, 5}, 2).path, CopyPath::kBuffered);
  const CopyChoice across = choose_copy_path(CopyMethod::kAuto, {kTmpfs, 1}, {kExt4, 7}, 2);
  EXPECT_EQ(across.path, CopyPath::kBuffered);
  EXPECT_NE(across.why.find("source on tmpfs and export on ext4"), std::string::npos) << across.why;
}

TEST(CopyChoiceTest, OneCpuCopiesDataByTheReadWriteLoop) {
  // the hashing thread would share the copy's core: one thread, the window in cache
  const CopyChoice one = choose_copy_path(CopyMethod::kAuto, {kTmpfs, 1}, {kTmpfs, 1}, 1);
  EXPECT_EQ(one.path, CopyPath::kBuffered);
  EXPECT_NE(one.why.find("only one CPU"), std::string::npos) << one.why;
  // where extents are shared there is no copy to take turns with
  EXPECT_EQ(choose_copy_path(CopyMethod::kAuto, {kXfs, 3}, {kXfs, 3}, 1).path, CopyPath::kKernelExtents);
  EXPECT_EQ(choose_copy_path(CopyMethod::kKernel, {kTmpfs, 1}, {kTmpfs, 1}, 1).path, CopyPath::kKernelWindows);
  EXPECT_GE(usable_cpus(), 1u);
}

TEST(CopyChoiceTest, AnExplicitMethodIsKept) {
  EXPECT_EQ(choose_copy_path(CopyMethod::kBuffered, {kXfs, 3}, {kXfs, 3}, 2).path, CopyPath::kBuffered);
  EXPECT_EQ(choose_copy_path(CopyMethod::kKernel, {kTmpfs, 1}, {kExt4, 7}, 2).path, CopyPath::kKernelWindows);
  EXPECT_EQ(choose_copy_path(CopyMethod::kKernel, {kXfs, 3}, {kXfs, 3}, 2).path, CopyPath::kKernelExtents);
}

TEST(CopyChoiceTest, FileSystemNames) {
  EXPECT_EQ(filesystem_name(kTmpfs), "tmpfs");
  EXPECT_EQ(filesystem_name(kExt4), "ext4");
  EXPECT_EQ(filesystem_name(0x12345), "0x12345");
  EXPECT_TRUE(shares_extents(kXfs));
  EXPECT_FALSE(shares_extents(kTmpfs));
  EXPECT_FALSE(shares_extents(0x12345));
}

TEST(CopyChoiceTest, ChoosesForRealDirectories) {
  testing::TempDir dir;
  const CopyChoice same = choose_copy_path_for(CopyMethod::kAuto, dir.path(), dir.path());
  const bool two_cpus = usable_cpus() >= 2;  // e.g. not under taskset -c 0
  EXPECT_EQ(same.path != CopyPath::kBuffered, two_cpus) << same.why;  // one directory is one file system
  const CopyChoice missing = choose_copy_path_for(CopyMethod::kAuto, dir.path() + "/no-such-dir", dir.path());
  EXPECT_EQ(missing.path, two_cpus ? CopyPath::kKernelWindows : CopyPath::kBuffered);
  EXPECT_NE(missing.why.find("no-such-dir"), std::string::npos) << missing.why;
  auto fs = filesystem_of(dir.path() + "/no-such-dir", ExitCode::kOutput);
  ASSERT_FALSE(fs);
  EXPECT_EQ(fs.error().code, ExitCode::kOutput);
}

}  // namespace
}  // namespace recis_convert
