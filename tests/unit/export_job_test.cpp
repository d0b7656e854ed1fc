// The orchestrator on the one-rank communicator: the whole stage order without mpirun.
#include "recis_convert/export_job.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <nlohmann/json.hpp>

#include "recis_convert/mpi/comm.h"
#include "test_files.h"

namespace recis_convert {
namespace {

using testing::path_exists;
using testing::read_file;
using testing::TempDir;

void make_checkpoint(const TempDir& dir) {
  ASSERT_EQ(::mkdir(dir.file("ckpt").c_str(), 0777), 0);
  testing::write_small_checkpoint(dir.file("ckpt"));
}

JobOptions options_for(const std::string& ckpt, const std::string& out) {
  JobOptions o;
  o.ckpt_dir = ckpt;
  o.export_dir = out;
  o.quiet = true;
  o.fsync = false;
  return o;
}

TEST(ExportJobTest, FilteredExportIsPublishedWithManifestAndMetadata) {
  TempDir dir;
  make_checkpoint(dir);
  JobOptions o = options_for(dir.file("ckpt"), dir.file("out"));
  o.filter_optimizer = true;
  SerialComm comm;
  ASSERT_EQ(run_export(o, comm), ExitCode::kOk);
  const auto manifest = nlohmann::json::parse(read_file(dir.file("out/manifest.json")));
  EXPECT_EQ(manifest["tables"]["user"]["slots"], (std::vector<std::string>{"id", "embedding"}));
  EXPECT_TRUE(path_exists(dir.file("out/index")));
  EXPECT_TRUE(path_exists(dir.file("out/tensorkey.json")));
  EXPECT_TRUE(path_exists(dir.file("out/run_record.json")));
  EXPECT_EQ(read_file(dir.file("out/tensorkey.json")).find("exp_avg"), std::string::npos);
}

TEST(ExportJobTest, BadCheckpointPublishesNothing) {
  TempDir dir;
  make_checkpoint(dir);
  testing::write_file(dir.file("ckpt/index"), "{not json");
  JobOptions o = options_for(dir.file("ckpt"), dir.file("out"));
  SerialComm comm;
  EXPECT_EQ(run_export(o, comm), ExitCode::kBadInput);
  EXPECT_FALSE(path_exists(dir.file("out")));
}

TEST(ExportJobTest, ExportIntoTheSourceIsRefused) {
  TempDir dir;
  make_checkpoint(dir);
  JobOptions o = options_for(dir.file("ckpt"), dir.path());
  o.overwrite = true;
  SerialComm comm;
  EXPECT_EQ(run_export(o, comm), ExitCode::kOutput);
  EXPECT_TRUE(path_exists(dir.file("ckpt/index")));
}

TEST(ExportJobTest, DryRunWritesNothing) {
  TempDir dir;
  make_checkpoint(dir);
  JobOptions o = options_for(dir.file("ckpt"), dir.file("out"));
  o.dry_run = true;
  SerialComm comm;
  EXPECT_EQ(run_export(o, comm), ExitCode::kOk);
  EXPECT_FALSE(path_exists(dir.file("out")));
}

}  // namespace
}  // namespace recis_convert
