// --config files: read by StrictJsonConfig, applied by CLI11 through each option (checked via the parser).
#include "recis_convert/cli/json_config.h"

#include <gtest/gtest.h>

#include "recis_convert/cli/cli.h"
#include "cli/parse_args.h"
#include "test_files.h"

namespace recis_convert {
namespace {

using testing::parse;

TEST(JsonConfigTest, ConfigFileSuppliesOptionsAndFlagsOverrideIt) {
  testing::TempDir dir;
  testing::write_file(dir.file("job.json"),
                      R"({"ckpt-dir": "/from-config", "export-dir": "/o", "filter-optimizer": true,
                          "buffer-mib": 16, "drop-slot": ["step_filter"], "balance": "size"})");
  auto cl = parse({"--config", dir.file("job.json"), "--buffer-mib", "32"});
  ASSERT_EQ(cl.action, CommandLine::Action::kRun) << cl.message;
  EXPECT_EQ(cl.options.ckpt_dir, "/from-config");
  EXPECT_TRUE(cl.options.filter_optimizer);
  EXPECT_EQ(cl.options.buffer_mib, 32u);
  EXPECT_EQ(cl.options.drop_slots, (std::vector<std::string>{"step_filter"}));
  EXPECT_EQ(cl.options.balance, Balance::kSize);
}

TEST(JsonConfigTest, UnknownConfigKeyIsUsageError) {
  testing::TempDir dir;
  testing::write_file(dir.file("job.json"), R"({"ckpt-dir": "/c", "export-dir": "/o", "filter_optimizer": true})");
  auto cl = parse({"--config", dir.file("job.json")});
  EXPECT_EQ(cl.exit_code, 2);
  EXPECT_NE(cl.message.find("filter_optimizer"), std::string::npos);
}

TEST(JsonConfigTest, WrongTypeInConfigIsUsageError) {
  testing::TempDir dir;
  testing::write_file(dir.file("job.json"), R"({"ckpt-dir": "/c", "export-dir": "/o", "filter-optimizer": "yes"})");
  EXPECT_EQ(parse({"--config", dir.file("job.json")}).exit_code, 2);
}

TEST(JsonConfigTest, ConfigValuesGoThroughTheFlagsOwnChecks) {
  testing::TempDir dir;
  testing::write_file(dir.file("job.json"), R"({"ckpt-dir": "/c", "export-dir": "/o", "buffer-mib": 0})");
  auto range = parse({"--config", dir.file("job.json")});
  EXPECT_EQ(range.exit_code, 2);
  EXPECT_NE(range.message.find("--buffer-mib: Value 0 not in range 1 to 4096"), std::string::npos) << range.message;
  testing::write_file(dir.file("job.json"), R"({"ckpt-dir": "/c", "export-dir": "/o", "balance": "sideways"})");
  auto choice = parse({"--config", dir.file("job.json")});
  EXPECT_EQ(choice.exit_code, 2);
  EXPECT_NE(choice.message.find("\"sideways\" is not one of round-robin|size"), std::string::npos) << choice.message;
  testing::write_file(dir.file("job.json"), R"({"ckpt-dir": "/c", "export-dir": "/o", "config": "other.json"})");
  auto nested = parse({"--config", dir.file("job.json")});
  EXPECT_EQ(nested.exit_code, 2);
  EXPECT_NE(nested.message.find("\"config\" cannot be set in the job config"), std::string::npos) << nested.message;
  testing::write_file(dir.file("job.json"), R"({"ckpt-dir": "/c", "ckpt-dir": "/d", "export-dir": "/o"})");
  EXPECT_NE(parse({"--config", dir.file("job.json")}).message.find("twice"), std::string::npos);
  testing::write_file(dir.file("job.json"), R"({"ckpt-dir": "/c", "export-dir": "/o", "drop-slot": []})");
  auto empty = parse({"--config", dir.file("job.json")});  // as run records write it
  ASSERT_EQ(empty.action, CommandLine::Action::kRun) << empty.message;
  EXPECT_TRUE(empty.options.drop_slots.empty());
}

}  // namespace
}  // namespace recis_convert
