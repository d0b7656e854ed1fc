#include "recis_convert/metadata/run_report.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "test_files.h"

namespace recis_convert {
namespace {

TensorInfo tensor(const std::string& name, uint64_t bytes) {
  TensorInfo t;
  t.name = name;
  t.dtype = DType::kU8;
  t.dtype_spelling = "U8";
  t.shape = {bytes};
  t.begin = 0;
  t.end = bytes;
  return t;
}

TEST(RunReportTest, RecordsWhatTheRunDid) {
  JobOptions options;
  options.ckpt_dir = "/ckpt";
  options.export_dir = "/out";
  options.filter_optimizer = true;
  RunReport report(options, "node7", 2);
  CheckpointListing listing;
  listing.ckpt_dir = "/ckpt/ckpt_200";
  listing.ckpt_id = "ckpt_200";
  report.set_checkpoint(listing, "latest", "the latest");
  report.set_ranks({{0, 2, 100, 40, 0.5, "", "kernel-windows"}, {1, 1, 50, 0, 0.25, "/ckpt/ckpt_200/f: bad", ""}});
  report.set_copy("kernel-windows", "source and export on one tmpfs file system");
  FileResult file;
  file.dropped = {tensor("user.exp_avg/part_0_1", 30), tensor("user.exp_avg/part_1_1", 10),
                  tensor("sparse_adamw_step^ ", 8)};
  report.set_dropped({file});
  report.set_stage_seconds("stream", 0.5);
  report.set_global_steps({{"user", GlobalStep{200, "extra.pt global_step"}}});
  report.add_error("/ckpt/ckpt_200/f: bad");

  auto j = nlohmann::json::parse(report.to_json(ExitCode::kBadInput, false));
  EXPECT_EQ(j["exit_code"], 3);
  EXPECT_EQ(j["status"], "bad input");
  EXPECT_EQ(j["published"], false);
  EXPECT_EQ(j["host"], "node7");
  EXPECT_EQ(j["ranks"], 2);
  EXPECT_EQ(j["options"]["ckpt-dir"], "/ckpt");
  EXPECT_EQ(j["options"]["filter-optimizer"], true);
  EXPECT_EQ(j["checkpoint"]["id"], "ckpt_200");
  EXPECT_EQ(j["per_rank"][1]["error"], "/ckpt/ckpt_200/f: bad");
  EXPECT_FALSE(j["per_rank"][0].contains("error"));
  EXPECT_EQ(j["per_rank"][0]["copy_path"], "kernel-windows");
  EXPECT_FALSE(j["per_rank"][1].contains("copy_path"));
  EXPECT_EQ(j["copy"]["path"], "kernel-windows");
  EXPECT_EQ(j["copy"]["why"], "source and export on one tmpfs file system");
  EXPECT_EQ(j["dropped_by_slot"]["exp_avg"]["bytes"], 40);
  EXPECT_EQ(j["dropped_by_slot"]["exp_avg"]["tensors"], 2);
  EXPECT_EQ(j["dropped_by_slot"]["sparse_adamw_step"]["bytes"], 8);
  EXPECT_EQ(j["seconds"]["stream"], 0.5);
  EXPECT_EQ(j["global_steps"]["user"]["step"], 200);
  EXPECT_EQ(j["global_steps"]["user"]["from"], "extra.pt global_step");
  EXPECT_EQ(j["errors"][0], "/ckpt/ckpt_200/f: bad");
  EXPECT_TRUE(j.contains("started_at") && j.contains("finished_at"));
}

TEST(RunReportTest, WritesAtomically) {
  testing::TempDir dir;
  const std::string path = dir.file("report.json");
  ASSERT_TRUE(write_file_atomically(path, "first\n"));
  ASSERT_TRUE(write_file_atomically(path, "second\n"));  // replaces
  EXPECT_EQ(testing::read_file(path), "second\n");
  std::vector<std::string> entries;
  if (DIR* d = ::opendir(dir.path().c_str())) {
    while (const dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') entries.push_back(e->d_name);
    }
    ::closedir(d);
  }
  EXPECT_EQ(entries, std::vector<std::string>{"report.json"});  // no temporary left
  auto failed = write_file_atomically(dir.file("missing/report.json"), "x");
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, ExitCode::kOutput);
  EXPECT_EQ(failed.error().file, dir.file("missing/report.json"));
}

// The stall watchdog ends the process from its thread: the record written then is the one kept at the start, with
// the stall's line; once the run has ended on its own, nothing is written for it.
TEST(RunReportTest, AStoppedRunsReportIsTheStartsRecordWithTheStall) {
  testing::TempDir dir;
  JobOptions options;
  options.ckpt_dir = "/ckpt";
  const std::string path = dir.file("report.json");
  keep_report_for_stop(path, RunReport(options, "node1", 6));
  write_report_of_stopped_run(ExitCode::kStalled, "stalled: no word for 5.00 s from rank 4 (node3)");
  const auto record = nlohmann::json::parse(testing::read_file(path));
  EXPECT_EQ(record["status"], "stalled");
  EXPECT_EQ(record["exit_code"], 6);
  EXPECT_EQ(record["published"], false);
  EXPECT_EQ(record["errors"], nlohmann::json::array({"stalled: no word for 5.00 s from rank 4 (node3)"}));
  EXPECT_EQ(record["options"]["ckpt-dir"], "/ckpt");
  forget_report_for_stop();
  ::unlink(path.c_str());
  write_report_of_stopped_run(ExitCode::kStalled, "late");
  EXPECT_FALSE(testing::path_exists(path));
}

}  // namespace
}  // namespace recis_convert
