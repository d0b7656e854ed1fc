#include "recis_convert/cli/cli.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "cli/parse_args.h"
#include "test_files.h"

namespace recis_convert {
namespace {

using testing::parse;

TEST(CliTest, HelpExitsZeroAndListsOptionsAndExitCodes) {
  auto cl = parse({"--help"});
  EXPECT_EQ(cl.action, CommandLine::Action::kExit);
  EXPECT_EQ(cl.exit_code, 0);
  EXPECT_NE(cl.message.find("--filter-optimizer"), std::string::npos);
  EXPECT_NE(cl.message.find("Exit codes"), std::string::npos);
}

TEST(CliTest, VersionExitsZero) {
  auto cl = parse({"--version"});
  EXPECT_EQ(cl.exit_code, 0);
  EXPECT_NE(cl.message.find(tool_version()), std::string::npos);
}

TEST(CliTest, TypicalRunWithDefaults) {
  auto cl = parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--filter-optimizer"});
  ASSERT_EQ(cl.action, CommandLine::Action::kRun) << cl.message;
  EXPECT_EQ(cl.options.ckpt_dir, "/c");
  EXPECT_TRUE(cl.options.filter_optimizer);
  EXPECT_EQ(cl.options.buffer_mib, 8u);
  EXPECT_EQ(cl.options.balance, Balance::kRoundRobin);
  EXPECT_TRUE(cl.options.fsync);
}

TEST(CliTest, UnknownOptionIsUsageError) {
  auto cl = parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--bogus"});
  EXPECT_EQ(cl.action, CommandLine::Action::kExit);
  EXPECT_EQ(cl.exit_code, 2);
}

TEST(CliTest, MissingCheckpointIsUsageError) {
  auto cl = parse({"--export-dir", "/o"});
  EXPECT_EQ(cl.exit_code, 2);
  EXPECT_NE(cl.message.find("--ckpt-dir"), std::string::npos);
}

TEST(CliTest, BufferOutOfRangeIsUsageError) {
  EXPECT_EQ(parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--buffer-mib", "0"}).exit_code, 2);
}

TEST(CliTest, DroppingIdIsRefused) {
  auto cl = parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--drop-slot", "id"});
  EXPECT_EQ(cl.exit_code, 2);
}

TEST(CliTest, BalanceAndRepeatedDropSlot) {
  auto cl = parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--balance", "size", "--drop-slot", "a", "--drop-slot", "b"});
  ASSERT_EQ(cl.action, CommandLine::Action::kRun) << cl.message;
  EXPECT_EQ(cl.options.balance, Balance::kSize);
  EXPECT_EQ(cl.options.drop_slots, (std::vector<std::string>{"a", "b"}));
}

TEST(CliTest, ChoicesIgnoreCase) {
  auto cl = parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--format", "HDF5", "--hdf5-transfer", "Independent",
                   "--quantize-embeddings", "INT8"});
  ASSERT_EQ(cl.action, CommandLine::Action::kRun) << cl.message;
  EXPECT_EQ(cl.options.format, ExportFormat::kHdf5);
  EXPECT_EQ(cl.options.hdf5_transfer, Hdf5Transfer::kIndependent);
  EXPECT_EQ(cl.options.embedding_dtypes.all, ServingDType::kInt8);
}

TEST(CliTest, QuantizeTableOverridesAreCheckedAndRecordedSorted) {
  auto cl = parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--quantize-embeddings", "int4", "--quantize-table",
                   "user=FP16", "--quantize-table", "item=none", "--quantize-table", "user=FP16"});
  ASSERT_EQ(cl.action, CommandLine::Action::kRun) << cl.message;
  EXPECT_EQ(cl.options.embedding_dtypes.all, ServingDType::kInt4);
  EXPECT_EQ(cl.options.embedding_dtypes.of("user"), ServingDType::kFp16);
  EXPECT_EQ(cl.options.embedding_dtypes.of("item"), ServingDType::kNone);
  EXPECT_EQ(cl.options.quantize_tables, (std::vector<std::string>{"item=none", "user=FP16"}));
  const auto config = job_config_json(cl.options);
  EXPECT_EQ(config["quantize-embeddings"], "int4");
  EXPECT_EQ(config["quantize-table"], nlohmann::ordered_json({"item=none", "user=FP16"}));
  for (const char* bad : {"user", "=int8", "user=int3", "user="}) {
    auto refused = parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--quantize-table", bad});
    EXPECT_EQ(refused.exit_code, 2) << bad;
    EXPECT_NE(refused.message.find("TABLE=DTYPE"), std::string::npos) << refused.message;
  }
  auto twice = parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--quantize-table", "a=int8", "--quantize-table",
                      "a=int4"});
  EXPECT_EQ(twice.exit_code, 2);
  EXPECT_NE(twice.message.find("two dtypes"), std::string::npos) << twice.message;
}

TEST(CliTest, EvictionRulesAreOptionalAndChecked) {
  auto none = parse({"--ckpt-dir", "/c", "--export-dir", "/o"});
  ASSERT_EQ(none.action, CommandLine::Action::kRun) << none.message;
  EXPECT_FALSE(none.options.eviction.any());
  auto cl = parse({"--ckpt-dir", "/c", "--dry-run", "--evict-older-than", "0", "--evict-l2-below", "0.5"});
  ASSERT_EQ(cl.action, CommandLine::Action::kRun) << cl.message;
  EXPECT_EQ(cl.options.eviction.older_than, std::optional<uint64_t>(0));
  EXPECT_EQ(cl.options.eviction.l2_below, std::optional<float>(0.5f));
  const auto config = job_config_json(cl.options);
  EXPECT_EQ(config["evict-older-than"], 0);
  EXPECT_EQ(config["evict-l2-below"], 0.5);
  EXPECT_FALSE(job_config_json(none.options).contains("evict-older-than"));
  EXPECT_EQ(parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--evict-older-than", "5", "--format", "hdf5"}).exit_code,
            0);
  EXPECT_EQ(parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--reshard", "3", "--format", "hdf5"}).exit_code, 0);
  EXPECT_EQ(parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--reshard", "0"}).exit_code, 2);
  EXPECT_EQ(parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--reshard", "65536"}).options.reshard, 65536u);
  EXPECT_EQ(parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--evict-older-than", "5"}).exit_code, 0);
  EXPECT_EQ(parse({"--ckpt-dir", "/c", "--dry-run", "--evict-older-than", "-5"}).exit_code, 2);
  EXPECT_EQ(parse({"--ckpt-dir", "/c", "--dry-run", "--evict-l2-below", "-1"}).exit_code, 2);
}

TEST(CliTest, ADeltaIsRecordedAsGivenAndNeedsARecisCheckpoint) {
  auto full = parse({"--ckpt-dir", "/c", "--export-dir", "/o"});
  EXPECT_FALSE(full.options.is_delta());
  EXPECT_FALSE(full.options.selects_rows());
  EXPECT_FALSE(job_config_json(full.options).contains("delta-since"));
  auto delta = parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--delta-since", "/exports/base"});
  ASSERT_EQ(delta.action, CommandLine::Action::kRun) << delta.message;
  EXPECT_EQ(delta.options.delta_since, "/exports/base");  // rank 0 resolves it (delta_base.h)
  EXPECT_TRUE(delta.options.selects_rows());
  EXPECT_EQ(job_config_json(delta.options)["delta-since"], "/exports/base");
  auto hugectr = parse({"--source", "hugectr", "--graph", "/proc/self/status", "--sparse", "/", "--export-dir", "/o",
                        "--delta-since", "100"});
  EXPECT_EQ(hugectr.exit_code, 2);
  EXPECT_NE(hugectr.message.find("HugeCTR model has none"), std::string::npos) << hugectr.message;
}

TEST(CliTest, ADistributedCheckpointTakesCkptDirAndRefusesWhatItsExportDoesNotDo) {
  auto dcp = parse({"--source", "dcp", "--ckpt-dir", "/m", "--export-dir", "/o", "--reshard", "4",
                    "--evict-l2-below", "0.1", "--quantize-embeddings", "int8"});
  ASSERT_EQ(dcp.action, CommandLine::Action::kRun) << dcp.message;
  EXPECT_EQ(dcp.options.source, SourceKind::kDcp);
  EXPECT_EQ(dcp.options.ckpt_dir, "/m");
  EXPECT_EQ(parse({"--source", "dcp", "--export-dir", "/o"}).exit_code, 2);  // no --ckpt-dir
  for (const std::vector<std::string>& extra : {std::vector<std::string>{"--delta-since", "100"}}) {
    std::vector<std::string> args = {"--source", "dcp", "--ckpt-dir", "/m", "--export-dir", "/o"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto refused = parse(args);
    EXPECT_EQ(refused.exit_code, 2) << extra[0];
    EXPECT_NE(refused.message.find(extra[0]), std::string::npos) << refused.message;
    EXPECT_NE(refused.message.find("--source dcp"), std::string::npos) << refused.message;
  }
}

TEST(CliTest, APublishRootTakesTheExportDirsPlaceWithAVersionNameAndKeep) {
  auto root = parse({"--ckpt-dir", "/c", "--publish-root", "/serve", "--keep", "3", "--version-name", "nightly"});
  ASSERT_EQ(root.action, CommandLine::Action::kRun) << root.message;
  EXPECT_EQ(root.options.publish_root, "/serve");
  EXPECT_EQ(root.options.keep, 3u);
  EXPECT_EQ(root.options.version_name, "nightly");
  const auto config = job_config_json(root.options);
  EXPECT_EQ(config["publish-root"], "/serve");
  EXPECT_EQ(config["keep"], 3);
  EXPECT_FALSE(config.contains("export-dir"));
  EXPECT_FALSE(job_config_json(parse({"--ckpt-dir", "/c", "--export-dir", "/o"}).options).contains("keep"));
  // --resume journals a row table's ranges where they were placed (--reshard and serving dtypes too); model.h5, and a
  // checkpoint's --reshard and serving dtypes, it refuses
  const std::vector<std::string> dcp_resume = {"--source", "dcp", "--ckpt-dir", "/m", "--export-dir", "/o", "--resume"};
  auto with = [&dcp_resume](std::vector<std::string> extra) {
    extra.insert(extra.begin(), dcp_resume.begin(), dcp_resume.end());
    return extra;
  };
  EXPECT_EQ(parse(with({"--reshard", "4", "--evict-l2-below", "0.1", "--quantize-embeddings", "int8"})).action,
            CommandLine::Action::kRun);
  for (const auto& [args, text] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {with({"--format", "hdf5"}), "--format hdf5"},
           {{"--ckpt-dir", "/c", "--export-dir", "/o", "--resume", "--quantize-embeddings", "int8"}, "serving dtypes"},
           {{"--ckpt-dir", "/c", "--export-dir", "/o", "--resume", "--reshard", "2"}, "--reshard of a checkpoint"}}) {
    auto parsed = parse(args);
    EXPECT_EQ(parsed.exit_code, 2) << text;
    EXPECT_NE(parsed.message.find(text), std::string::npos) << parsed.message;
  }
  const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
      {{"--ckpt-dir", "/c", "--publish-root", "/serve", "--export-dir", "/o"}, "exclude each other"},
      {{"--ckpt-dir", "/c"}, "--export-dir (or --publish-root) is required"},
      {{"--ckpt-dir", "/c", "--export-dir", "/o", "--keep", "2"}, "go with --publish-root"},
      {{"--ckpt-dir", "/c", "--publish-root", "/serve", "--delta-since", "100"}, "a delta goes to --export-dir"},
      {{"--ckpt-dir", "/c", "--publish-root", "/serve", "--version-name", ".hidden"}, "cannot name a version"},
      {{"--source", "hugectr", "--graph", "/proc/self/status", "--sparse", "/", "--publish-root", "/serve"},
       "needs --version-name"}};
  for (const auto& [args, text] : refused) {
    auto parsed = parse(args);
    EXPECT_EQ(parsed.exit_code, 2) << text;
    EXPECT_NE(parsed.message.find(text), std::string::npos) << parsed.message;
  }
  EXPECT_EQ(parse({"--ckpt-dir", "/c", "--publish-root", "/serve", "--keep", "0"}).exit_code, 2);
}

TEST(CliTest, MergeTakesABaseDeltasInOrderAndAnExportDir) {
  auto cl = parse({"merge", "/", "/proc", "/sys", "--export-dir", "/o", "--evict-older-than", "60", "--no-fsync"});
  ASSERT_EQ(cl.action, CommandLine::Action::kRun) << cl.message;
  EXPECT_EQ(cl.command, CommandLine::Command::kMerge);
  EXPECT_EQ(cl.merge.base, "/");
  EXPECT_EQ(cl.merge.deltas, (std::vector<std::string>{"/proc", "/sys"}));
  EXPECT_EQ(cl.merge.export_dir, "/o");
  EXPECT_EQ(cl.merge.older_than, std::optional<uint64_t>(60));
  EXPECT_FALSE(cl.merge.fsync);
  EXPECT_FALSE(parse({"merge", "/", "/proc", "--export-dir", "/o"}).merge.older_than);
  EXPECT_EQ(parse({"merge", "/", "--export-dir", "/o"}).exit_code, 2);             // no delta
  EXPECT_EQ(parse({"merge", "/", "/proc"}).exit_code, 2);                          // no --export-dir
  EXPECT_EQ(parse({"merge", "/", "/no/such", "--export-dir", "/o"}).exit_code, 2);  // not a directory
  EXPECT_EQ(parse({"merge", "/", "/proc", "--export-dir", "/o", "--evict-older-than", "-1"}).exit_code, 2);
  auto help = parse({"merge", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.message.find("Exit codes"), std::string::npos);
  EXPECT_NE(parse({"--help"}).message.find("recis-convert merge BASE DELTA"), std::string::npos);
}

TEST(CliTest, MergeTakesTheExportsRowOptionsReshardAndFormat) {
  auto cl = parse({"merge", "/", "/proc", "--export-dir", "/o", "--filter-optimizer", "--drop-slot", "step_filter",
                   "--quantize-embeddings", "int8", "--quantize-table", "user=fp16", "--evict-l2-below", "0.5",
                   "--reshard", "3", "--format", "hdf5", "--balance", "size"});
  ASSERT_EQ(cl.action, CommandLine::Action::kRun) << cl.message;
  EXPECT_TRUE(cl.merge.filter_optimizer);
  EXPECT_EQ(cl.merge.balance, Balance::kSize);
  EXPECT_EQ(parse({"merge", "/", "/proc", "--export-dir", "/o"}).merge.balance, Balance::kRoundRobin);
  EXPECT_EQ(parse({"merge", "/", "/proc", "--export-dir", "/o", "--balance", "bytes"}).exit_code, 2);
  EXPECT_EQ(cl.merge.reshard, 3u);
  EXPECT_EQ(cl.merge.format, ExportFormat::kHdf5);
  EXPECT_EQ(cl.merge.drop_slots, (std::vector<std::string>{"step_filter"}));
  EXPECT_EQ(cl.merge.embedding_dtypes.all, ServingDType::kInt8);
  EXPECT_EQ(cl.merge.embedding_dtypes.of("user"), ServingDType::kFp16);
  EXPECT_EQ(cl.merge.l2_below, std::optional<float>(0.5f));
  EXPECT_EQ(parse({"merge", "/", "/proc", "--export-dir", "/o", "--quantize-table", "user"}).exit_code, 2);
  EXPECT_EQ(parse({"merge", "/", "/proc", "--export-dir", "/o", "--evict-l2-below", "-1"}).exit_code, 2);
  EXPECT_EQ(parse({"merge", "/", "/proc", "--export-dir", "/o", "--drop-slot", "id"}).exit_code, 2);  // as the export
  EXPECT_EQ(parse({"merge", "/", "/proc", "--export-dir", "/o", "--reshard", "0"}).exit_code, 2);  // as the export
  EXPECT_EQ(parse({"merge", "/", "/proc", "--export-dir", "/o", "--format", "h5"}).exit_code, 2);
  // an export option a merge has no use for is not read as a delta directory
  EXPECT_EQ(parse({"merge", "/", "/proc", "--export-dir", "/o", "--ckpt-dir", "/c"}).exit_code, 2);
}

TEST(CliTest, SelectBestOptions) {
  auto cl = parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--select", "best", "--metric", "loss",
                   "--smaller-is-better"});
  ASSERT_EQ(cl.action, CommandLine::Action::kRun) << cl.message;
  EXPECT_EQ(cl.options.select, CheckpointSelect::kBest);
  EXPECT_EQ(cl.options.metric_order, MetricOrder::kSmallerIsBetter);
  EXPECT_EQ(cl.options.eval_log, "/c/train_eval_result_v2.txt");  // TorchEasyRec's file in the output directory
  EXPECT_EQ(parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--select", "best"}).exit_code, 2);  // no --metric
  EXPECT_EQ(parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--metric", "auc"}).exit_code, 2);   // no --select best
  EXPECT_EQ(parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--select", "best", "--metric", "auc",
                   "--larger-is-better", "--smaller-is-better"}).exit_code, 2);
}

TEST(CliTest, ReportNeedsAnExistingDirectory) {
  EXPECT_EQ(parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--report", "/no/such/dir/r.json"}).exit_code, 2);
  testing::TempDir dir;
  auto cl = parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--report", dir.file("r.json")});
  ASSERT_EQ(cl.action, CommandLine::Action::kRun) << cl.message;
  EXPECT_EQ(cl.options.report, dir.file("r.json"));
}

// The report is written on failure too, so where it goes is checked first: never into an input.
TEST(CliTest, ReportMustBeOutsideEveryInput) {
  testing::TempDir dir;
  testing::write_file(dir.file("fg.json"), "{}");
  auto inside = parse({"--ckpt-dir", dir.path(), "--export-dir", "/o", "--report", dir.file("r.json")});
  EXPECT_EQ(inside.exit_code, 2);
  EXPECT_NE(inside.message.find("is inside the checkpoint directory --ckpt-dir"), std::string::npos) << inside.message;
  auto over = parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--fg", dir.file("fg.json"), "--report", dir.file("fg.json")});
  EXPECT_EQ(over.exit_code, 2);
  EXPECT_NE(over.message.find("contains the fg config"), std::string::npos) << over.message;
}

TEST(CliTest, JobConfigJsonIsAConfigForTheSameJob) {
  testing::TempDir dir;
  auto first = parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--filter-optimizer", "--drop-slot", "step_filter",
                      "--format", "hdf5", "--hdf5-transfer", "independent", "--balance", "size", "--buffer-mib", "3",
                      "--no-fsync", "--select", "best", "--metric", "auc", "--eval-log", "/l"});
  ASSERT_EQ(first.action, CommandLine::Action::kRun) << first.message;
  testing::write_file(dir.file("job.json"), job_config_json(first.options).dump());
  auto second = parse({"--config", dir.file("job.json")});
  ASSERT_EQ(second.action, CommandLine::Action::kRun) << second.message;
  EXPECT_EQ(job_config_json(second.options), job_config_json(first.options));
  EXPECT_EQ(second.options.buffer_mib, 3u);
  EXPECT_FALSE(second.options.fsync);
  EXPECT_EQ(second.options.eval_log, "/l");
}

// A cron job's unset variable (`--delta-since "$BASE"`) must not turn into a full export: no option takes "".
TEST(CliTest, EmptyValuesAreUsageErrors) {
  for (const char* option : {"--delta-since", "--report", "--version-name", "--export-dir", "--ckpt-dir", "--fg",
                             "--dense-name", "--drop-slot", "--config"}) {
    auto cl = parse({"--ckpt-dir", "/c", "--export-dir", "/o", option, ""});
    EXPECT_EQ(cl.exit_code, 2) << option;
    EXPECT_NE(cl.message.find("an empty value is not allowed"), std::string::npos) << option << ": " << cl.message;
  }
  EXPECT_EQ(parse({"merge", "/", "", "--export-dir", "/o"}).exit_code, 2);
  EXPECT_EQ(parse({"verify", ""}).exit_code, 2);
  EXPECT_EQ(parse({"inspect", ""}).exit_code, 2);
  testing::TempDir dir;
  testing::write_file(dir.file("job.json"), R"({"ckpt-dir": "/c", "export-dir": "/o", "delta-since": ""})");
  EXPECT_EQ(parse({"--config", dir.file("job.json")}).exit_code, 2);
}

// Paths and names are recorded in JSON (run record, manifest, versions.json), which is UTF-8.
TEST(CliTest, ValuesThatAreNotUtf8AreUsageErrors) {
  for (const char* option : {"--ckpt-dir", "--export-dir", "--publish-root", "--table-names", "--report"}) {
    auto cl = parse({"--ckpt-dir", "/c", "--export-dir", "/o", option, "/tmp/us\xFF" "er"});
    EXPECT_EQ(cl.exit_code, 2) << option;
    EXPECT_NE(cl.message.find("is not valid UTF-8"), std::string::npos) << option << ": " << cl.message;
  }
}

TEST(CliTest, InputFilesMustBeRegularFiles) {
  testing::TempDir dir;
  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  testing::write_file(dir.file("arch.pt"), "");
  for (const char* option : {"--fg", "--mc", "--asset-files", "--config", "--dense-model", "--sample-inputs"}) {
    auto cl = parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--dense-model", dir.file("arch.pt"), option, fifo});
    EXPECT_EQ(cl.exit_code, 2) << option;
    EXPECT_NE(cl.message.find(fifo + " is a FIFO, not a regular file"), std::string::npos) << option << ": " << cl.message;
  }
  EXPECT_EQ(parse({"--source", "hugectr", "--graph", fifo, "--sparse", "/s", "--export-dir", "/o"}).exit_code, 2);
  EXPECT_EQ(parse({"--ckpt-dir", "/c", "--export-dir", "/o", "--fg", dir.path()}).exit_code, 2);
}

}  // namespace
}  // namespace recis_convert
