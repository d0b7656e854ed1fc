#include "recis_convert/sources/checkpoint_selection.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <set>
#include <string>

#include "test_files.h"

namespace recis_convert {
namespace {

const char* kLog =
    "{\"global_step\": 100, \"auc\": 0.70, \"loss\": 0.50}\n"
    "\n"
    "{\"global_step\": 200, \"auc\": 0.74, \"loss\": 0.45}\n"
    "{\"global_step\": 300, \"auc\": 0.72, \"loss\": 0.40}\n";

std::function<bool(const std::string&)> on_disk(std::set<std::string> ids) {
  return [ids](const std::string& id) { return ids.count(id) > 0; };
}

TEST(CheckpointSelectionTest, ParsesOneRecordPerLine) {
  auto records = parse_eval_log(kLog, "auc", "log");
  ASSERT_TRUE(records) << records.error().describe();
  ASSERT_EQ(records.value().size(), 3u);
  EXPECT_EQ(records.value()[1].global_step, 200);
  EXPECT_DOUBLE_EQ(records.value()[1].value, 0.74);
  EXPECT_EQ(records.value()[1].line, 3u);
}

TEST(CheckpointSelectionTest, PicksLargestOrSmallest) {
  auto all = on_disk({"ckpt_100", "ckpt_200", "ckpt_300"});
  auto auc = choose_best_checkpoint(parse_eval_log(kLog, "auc", "log").value(), "auc", MetricOrder::kLargerIsBetter,
                                    "log", all);
  ASSERT_TRUE(auc);
  EXPECT_EQ(auc.value().ckpt_id, "ckpt_200");
  EXPECT_NE(auc.value().reason.find("best auc = 0.74 (larger is better) of 3 evaluated steps"), std::string::npos)
      << auc.value().reason;
  auto loss = choose_best_checkpoint(parse_eval_log(kLog, "loss", "log").value(), "loss",
                                     MetricOrder::kSmallerIsBetter, "log", all);
  ASSERT_TRUE(loss);
  EXPECT_EQ(loss.value().ckpt_id, "ckpt_300");
}

TEST(CheckpointSelectionTest, SkipsPrunedCheckpointsAndSaysSo) {
  auto records = parse_eval_log(kLog, "auc", "log").value();
  auto choice = choose_best_checkpoint(records, "auc", MetricOrder::kLargerIsBetter, "log",
                                       on_disk({"ckpt_100", "ckpt_300"}));
  ASSERT_TRUE(choice);
  EXPECT_EQ(choice.value().ckpt_id, "ckpt_300");
  EXPECT_NE(choice.value().reason.find("skipped 1 better step(s) no longer on disk (ckpt_200)"), std::string::npos);
  auto none = choose_best_checkpoint(records, "auc", MetricOrder::kLargerIsBetter, "log", on_disk({}));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ExitCode::kBadInput);
  EXPECT_NE(none.error().message.find("none of its 3 evaluated steps has a checkpoint"), std::string::npos);
}

// TorchEasyRec's checkpoints are model.ckpt-<step>: the same choice among them, and one of them is not a model
// directory to choose in.
TEST(CheckpointSelectionTest, TorchEasyRecsCheckpointNamesAreChosenAlike) {
  testing::TempDir dir;
  for (const char* name : {"model.ckpt-100", "model.ckpt-200"}) ASSERT_EQ(::mkdir(dir.file(name).c_str(), 0755), 0);
  testing::write_file(dir.file("train_eval_result_v2.txt"), kLog);
  auto choice = select_best_checkpoint(dir.path(), dir.file("train_eval_result_v2.txt"), "loss",
                                       MetricOrder::kSmallerIsBetter, "model.ckpt-");
  ASSERT_TRUE(choice) << choice.error().describe();
  EXPECT_EQ(choice.value().ckpt_id, "model.ckpt-200");  // 300 is better, but not on disk
  auto inside = select_best_checkpoint(dir.file("model.ckpt-100"), dir.file("train_eval_result_v2.txt"), "loss",
                                       MetricOrder::kSmallerIsBetter, "model.ckpt-");
  ASSERT_FALSE(inside);
  EXPECT_NE(inside.error().message.find("is a checkpoint; --select best chooses among the model.ckpt-<step>"),
            std::string::npos)
      << inside.error().message;
}

TEST(CheckpointSelectionTest, TiesGoToTheLaterStepAndRepeatedStepsKeepTheLastLine) {
  const char* log =
      "{\"global_step\": 100, \"auc\": 0.8}\n"
      "{\"global_step\": 200, \"auc\": 0.8}\n"
      "{\"global_step\": 300, \"auc\": 0.9}\n"
      "{\"global_step\": 300, \"auc\": 0.1}\n";  // step 300 evaluated again (e.g. after a restart)
  auto records = parse_eval_log(log, "auc", "log");
  ASSERT_TRUE(records);
  ASSERT_EQ(records.value().size(), 3u);
  auto choice = choose_best_checkpoint(records.value(), "auc", MetricOrder::kLargerIsBetter, "log",
                                       on_disk({"ckpt_100", "ckpt_200", "ckpt_300"}));
  EXPECT_EQ(choice.value().ckpt_id, "ckpt_200");
}

TEST(CheckpointSelectionTest, BadLogsAreErrorsNamingTheLine) {
  struct Case {
    const char* text;
    const char* where;
    const char* says;
  } cases[] = {
      {"", "log", "is empty"},
      {"\n  \n", "log", "is empty"},
      {"{\"global_step\": 1, \"loss\": 0.3}\n", "log", "has no metric \"auc\" (it has: loss)"},
      {"{\"global_step\": 1, \"auc\": 0.5}\nnot json\n", "log:2", ""},
      {"[1, 2]\n", "log:1", "is not a JSON object"},
      {"{\"auc\": 0.5}\n", "log:1", "has no integer \"global_step\""},
      {"{\"global_step\": \"7\", \"auc\": 0.5}\n", "log:1", "has no integer \"global_step\""},
      {"{\"global_step\": 7, \"auc\": \"high\"}\n", "log:1", "is not a finite number"},
      {"{\"global_step\": 7, \"auc\": NaN}\n", "log:1", ""},  // Python's json.dumps writes NaN; JSON has none
      {"{\"global_step\": 7, \"auc\": 0.5, \"auc\": 0.6}\n", "log:1", "twice"},
  };
  for (const auto& c : cases) {
    auto records = parse_eval_log(c.text, "auc", "log");
    ASSERT_FALSE(records) << c.text;
    EXPECT_EQ(records.error().code, ExitCode::kBadInput) << c.text;
    EXPECT_EQ(records.error().file, c.where) << c.text;
    EXPECT_NE(records.error().message.find(c.says), std::string::npos) << c.text << ": " << records.error().message;
  }
}

}  // namespace
}  // namespace recis_convert
