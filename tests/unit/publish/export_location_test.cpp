#include "recis_convert/publish/export_location.h"

#include <gtest/gtest.h>

namespace recis_convert {
namespace {

TEST(ExportLocationTest, SplitsIntoParentAndBase) {
  EXPECT_EQ(split_path("/data/serve/v1").parent, "/data/serve");
  EXPECT_EQ(split_path("/data/serve/v1/").base, "v1");  // trailing slashes ignored
  EXPECT_EQ(split_path("v1").parent, ".");
  EXPECT_EQ(split_path("/v1").parent, "/");
  EXPECT_FALSE(host_name().empty());
}

}  // namespace
}  // namespace recis_convert
