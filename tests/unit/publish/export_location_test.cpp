#include "recis_convert/publish/export_location.h"

#include <gtest/gtest.h>

namespace recis_convert {
namespace {

TEST(ExportLocationTest, HostNameIsNeverEmpty) { EXPECT_FALSE(host_name().empty()); }

}  // namespace
}  // namespace recis_convert
