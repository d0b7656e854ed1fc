#include "recis_convert/sinks/hdf5_export.h"

#include <gtest/gtest.h>

namespace recis_convert {
namespace {

TEST(Hdf5TransferTest, AutoIsIndependentOnLocalFileSystemsAndCollectiveElsewhere) {
  EXPECT_FALSE(transfer_for_filesystem(0x01021994).collective);  // tmpfs
  EXPECT_FALSE(transfer_for_filesystem(0xEF53).collective);      // ext4
  EXPECT_FALSE(transfer_for_filesystem(0x58465342).collective);  // XFS
  EXPECT_TRUE(transfer_for_filesystem(0x0BD00BD0).collective);   // Lustre
  EXPECT_TRUE(transfer_for_filesystem(0x47504653).collective);   // GPFS
  EXPECT_TRUE(transfer_for_filesystem(0x6969).collective);       // NFS
  EXPECT_NE(transfer_for_filesystem(0x6969).why.find("0x6969"), std::string::npos);
}

TEST(Hdf5TransferTest, AnExplicitChoiceWinsAndAutoLooksAtTheDirectory) {
  EXPECT_TRUE(choose_hdf5_transfer(Hdf5Transfer::kCollective, "/dev/shm").collective);
  EXPECT_FALSE(choose_hdf5_transfer(Hdf5Transfer::kIndependent, "/nonexistent").collective);
  EXPECT_FALSE(choose_hdf5_transfer(Hdf5Transfer::kAuto, "/dev/shm").collective);  // tmpfs
  EXPECT_TRUE(choose_hdf5_transfer(Hdf5Transfer::kAuto, "/nonexistent/dir").collective);  // unknown: the safe one
}

}  // namespace
}  // namespace recis_convert
