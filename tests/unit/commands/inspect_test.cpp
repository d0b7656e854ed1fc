// inspect on a Distributed Checkpoint torch 2.6 wrote (tests/fixtures/dcp-torch2.6): what it reads from the
// metadata alone, and a hostile metadata refused.
#include "recis_convert/commands/inspect.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "test_files.h"

namespace recis_convert {
namespace {

const std::string kFixture = std::string(RECIS_SOURCE_DIR) + "/tests/fixtures/dcp-torch2.6";

TEST(InspectTest, ADcpCheckpointsTablesLayoutsAndDenseTensors) {
  auto in = inspect_path(kFixture + "/model");
  ASSERT_TRUE(in) << in.error().describe();
  EXPECT_EQ(in.value().kind, "DCP checkpoint");
  EXPECT_EQ(in.value().data_files, 3u);
  ASSERT_EQ(in.value().tables.size(), 5u);
  const InspectedTable& cate = in.value().tables[0];
  EXPECT_EQ(cate.child, "cate");
  EXPECT_EQ(cate.rows, 500u);
  EXPECT_EQ(cate.dim, 12u);
  EXPECT_EQ(cate.dtype, "F16");
  EXPECT_EQ(cate.layout, "column-wise (6 chunks)");
  EXPECT_EQ(in.value().tables[2].layout, "table-wise");
  EXPECT_EQ(in.value().tables[4].managed_collision.size(), 2u);
  EXPECT_EQ(in.value().dense.size(), 8u);
  const std::string text = inspection_text(in.value());
  EXPECT_NE(text.find("user_id                          1000     16    F32      1  embedding 62.50 KiB, row-wise (3 "
                      "chunks)"),
            std::string::npos)
      << text;
}

TEST(InspectTest, ADcpMetadataNamingAnyOtherGlobalIsRefused) {
  testing::TempDir dir;
  testing::write_file(dir.file(".metadata"), testing::read_file(kFixture + "/hostile/os_system.metadata"));
  auto in = inspect_path(dir.path());
  ASSERT_FALSE(in);
  EXPECT_EQ(in.error().code, ExitCode::kBadInput);
  EXPECT_NE(in.error().describe().find("global posix.system is not allowed"), std::string::npos);
}

TEST(InspectTest, ADataFileTheMetadataNamesMustBeThere) {
  testing::TempDir dir;
  testing::write_file(dir.file(".metadata"), testing::read_file(kFixture + "/model/.metadata"));
  auto in = inspect_path(dir.path());
  ASSERT_FALSE(in);
  EXPECT_NE(in.error().describe().find("__0_0.distcp: named by the checkpoint's .metadata but missing"),
            std::string::npos)
      << in.error().describe();
}

}  // namespace
}  // namespace recis_convert
