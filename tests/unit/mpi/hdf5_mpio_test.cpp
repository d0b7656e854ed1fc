#include "recis_convert/mpi/hdf5_mpio.h"

#include <gtest/gtest.h>

namespace recis_convert {
namespace {

TEST(Hdf5MpioTest, AStandInCommunicatorHasNoMpiCommunicatorToGiveHdf5) {
  SerialComm comm;
  auto used = use_mpi_io(0, comm, "/x/model.h5");
  ASSERT_FALSE(used);
  EXPECT_EQ(used.error().code, ExitCode::kInternal);
  EXPECT_NE(used.error().describe().find("/x/model.h5"), std::string::npos);
}

}  // namespace
}  // namespace recis_convert
