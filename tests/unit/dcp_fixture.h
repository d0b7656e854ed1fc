// The committed Distributed Checkpoint torch 2.6 wrote (tests/fixtures/dcp-torch2.6), described as discovery
// describes it, for the tests of what is built on the description.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "recis_convert/sources/dcp_checkpoint.h"

namespace recis_convert::testing {

inline const std::string kDcpFixture = std::string(RECIS_SOURCE_DIR) + "/tests/fixtures/dcp-torch2.6";

inline DcpCheckpoint dcp_fixture_checkpoint() {
  auto location = locate_dcp_checkpoint(kDcpFixture + "/model");
  EXPECT_TRUE(location);
  auto metadata = read_dcp_metadata(location.value().dcp_dir);
  EXPECT_TRUE(metadata);
  auto checkpoint = describe_dcp_checkpoint(location.value(), std::move(metadata).value());
  EXPECT_TRUE(checkpoint) << checkpoint.error().describe();
  return std::move(checkpoint).value();
}

}  // namespace recis_convert::testing
