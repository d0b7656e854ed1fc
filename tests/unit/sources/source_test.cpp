#include "recis_convert/sources/source.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "recis_convert/transforms/job_transforms.h"
#include "test_files.h"

namespace recis_convert {
namespace {

using testing::TempDir;

TEST(SourceTest, ACheckpointNamedByCkptDirIsDescribedAsSuch) {
  TempDir dir;
  testing::write_small_checkpoint(dir.path());
  JobOptions o;
  o.ckpt_dir = dir.path();
  auto source = discover_source(o, make_row_transforms(false, {}, EmbeddingDTypes{}), Log(0, true, false));
  ASSERT_TRUE(source) << source.error().describe();
  EXPECT_FALSE(source.value().is_hugectr());
  EXPECT_EQ(source.value().what(), "checkpoint");
  EXPECT_EQ(source.value().selection, "named by --ckpt-dir");
  EXPECT_EQ(source.value().listing.files.size(), 2u);
  EXPECT_TRUE(complete_source(source.value(), RowTransformChain()));  // nothing to lay out for RecIS
}

TEST(SourceTest, TheLatestOfAnOutputDirectoryIsNamedWithItsCheckpointFile) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.file("ckpt_7").c_str(), 0777), 0);
  testing::write_small_checkpoint(dir.file("ckpt_7"));
  testing::write_file(dir.file("checkpoint"), "ckpt_7\n");
  JobOptions o;
  o.ckpt_dir = dir.path();
  auto source = discover_source(o, RowTransformChain(), Log(0, true, false));
  ASSERT_TRUE(source) << source.error().describe();
  EXPECT_EQ(source.value().listing.ckpt_id, "ckpt_7");
  EXPECT_EQ(source.value().selection, "the latest, named last in " + dir.path() + "/checkpoint");
}

TEST(SourceTest, AMissingCheckpointIsBadInput) {
  JobOptions o;
  o.ckpt_dir = "/nonexistent/ckpt_1";
  auto source = discover_source(o, RowTransformChain(), Log(0, true, false));
  ASSERT_FALSE(source);
  EXPECT_EQ(source.error().code, ExitCode::kBadInput);
}

}  // namespace
}  // namespace recis_convert
