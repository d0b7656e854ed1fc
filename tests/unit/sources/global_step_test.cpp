#include "recis_convert/sources/global_step.h"

#include <gtest/gtest.h>

#include "torch_fixtures.h"

namespace recis_convert {
namespace {

std::string ckpt(const std::string& path) { return testing::torch_fixture("global_step/" + path); }

TEST(GlobalStepTest, EachTableTakesTheFirstRecordThatExists) {
  auto steps = resolve_global_steps(ckpt("every/ckpt_300"), "ckpt_300", {"cate", "item", "user"});
  ASSERT_TRUE(steps) << steps.error().describe();
  const auto& t = steps.value().tables;
  EXPECT_EQ(t.at("user").step, 250);  // its filter step, not the legacy buffer's 1
  EXPECT_EQ(t.at("user").source, "model.pt user@filter_global_step");
  EXPECT_EQ(t.at("item").step, 240);  // the legacy buffer (int32)
  EXPECT_EQ(t.at("item").source, "model.pt model.item._hashtable._filter_hook_impl._global_step");
  EXPECT_EQ(t.at("cate").step, 299);  // extra.pt, read past the optimizer's nested state
  EXPECT_EQ(t.at("cate").source, "extra.pt global_step");
  EXPECT_TRUE(steps.value().warnings.empty());
  EXPECT_EQ(steps.value().checkpoint->step, 299);  // the checkpoint's own: extra.pt's
  // the export's step: the latest of the step_filter tables' clocks
  const ExportClock clock = export_clock(steps.value());
  EXPECT_EQ(clock.step->step, 299);
  EXPECT_EQ(clock.tables.size(), 3u);
}

TEST(GlobalStepTest, RecisV11BuffersAreKeyedByModulePathAndWinOverExtra) {
  auto steps = resolve_global_steps(ckpt("engine/ckpt_6"), "ckpt_6", {"bias", "user_city", "user_id"});
  ASSERT_TRUE(steps) << steps.error().describe();
  const auto& t = steps.value().tables;
  EXPECT_EQ(t.at("bias").step, 8);  // its own module's buffer
  EXPECT_EQ(t.at("bias").source, "model.pt sparse_arch.bias._filter_hook_impl._global_step");
  for (const char* child : {"user_city", "user_id"}) {  // the engine table's, shared; not extra.pt's 4
    EXPECT_EQ(t.at(child).step, 6) << child;
    EXPECT_EQ(t.at(child).source,
              "model.pt sparse_arch.engine._ht.CoalescedHashtable_6aa0._hashtable._filter_hook_impl._global_step");
  }
  EXPECT_TRUE(steps.value().warnings.empty());
  EXPECT_EQ(steps.value().checkpoint->step, 4);
}

TEST(GlobalStepTest, EngineBuffersThatDisagreeAreNotGuessedBetween) {
  auto steps = resolve_global_steps(ckpt("engines_disagree/ckpt_7"), "ckpt_7", {"bias", "user_id"});
  ASSERT_TRUE(steps) << steps.error().describe();
  const auto& t = steps.value().tables;
  EXPECT_EQ(t.at("bias").step, 9);
  EXPECT_EQ(t.at("user_id").source, "extra.pt global_step");
  ASSERT_EQ(steps.value().warnings.size(), 1u);
  EXPECT_NE(steps.value().warnings[0].find("engine tables' filter-hook steps differ (5, 7)"), std::string::npos)
      << steps.value().warnings[0];
  EXPECT_NE(steps.value().warnings[0].find("\"user_id\" take the next record"), std::string::npos);
}

TEST(GlobalStepTest, WithoutTablesTheExportStepIsTheCheckpointsOwn) {
  auto steps = resolve_global_steps(ckpt("every/ckpt_300"), "ckpt_300", {});
  ASSERT_TRUE(steps) << steps.error().describe();
  const ExportClock clock = export_clock(steps.value());
  EXPECT_TRUE(clock.tables.empty());
  EXPECT_EQ(clock.step->step, 299);
  EXPECT_EQ(clock.step->source, "extra.pt global_step");
  auto by_name = resolve_global_steps(ckpt("by_name/ckpt_500"), "ckpt_500", {});
  EXPECT_EQ(export_clock(by_name.value()).step->source, "ckpt_500");
  auto nowhere = resolve_global_steps(ckpt("nowhere/latest"), "latest", {});
  ASSERT_TRUE(nowhere);
  EXPECT_FALSE(export_clock(nowhere.value()).step);
}

TEST(GlobalStepTest, TheDirectoryNameIsTheLastResort) {
  auto steps = resolve_global_steps(ckpt("by_name/ckpt_500"), "ckpt_500", {"user"});
  ASSERT_TRUE(steps) << steps.error().describe();
  EXPECT_EQ(steps.value().tables.at("user").step, 500);
  EXPECT_EQ(steps.value().tables.at("user").source, "ckpt_500");
}

TEST(GlobalStepTest, AnUnreadableExtraFileIsAWarningAndTheNameIsUsed) {
  auto steps = resolve_global_steps(ckpt("unreadable_extra/ckpt_9"), "ckpt_9", {"user"});
  ASSERT_TRUE(steps) << steps.error().describe();
  EXPECT_EQ(steps.value().tables.at("user").step, 9);
  ASSERT_EQ(steps.value().warnings.size(), 1u);
  EXPECT_NE(steps.value().warnings[0].find("extra.pt could not be read"), std::string::npos);
}

TEST(GlobalStepTest, NoRecordOrABadOneIsBadInputNamingIt) {
  auto none = resolve_global_steps(ckpt("nowhere/latest"), "latest", {"user"});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ExitCode::kBadInput);
  EXPECT_NE(none.error().message.find("no global step for table \"user\""), std::string::npos) << none.error().message;
  auto bad = resolve_global_steps(ckpt("not_an_integer/ckpt_7"), "ckpt_7", {"user"});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().describe().find("model.pt: \"user@filter_global_step\" is not an integer scalar"),
            std::string::npos)
      << bad.error().describe();
}

}  // namespace
}  // namespace recis_convert
