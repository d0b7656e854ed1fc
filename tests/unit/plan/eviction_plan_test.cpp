#include "recis_convert/plan/eviction_plan.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace recis_convert {
namespace {

LocatedColumn column(const std::string& table, const std::string& part, const std::string& slot,
                     const std::string& path) {
  return LocatedColumn{PartId{table, part}, slot,
                       DecisionColumn{path, table + "." + slot + "/" + part, 64, 10,
                                      slot == "embedding" ? DType::kF32 : DType::kI64, slot == "embedding" ? 8u : 1u}};
}

const std::map<std::string, int> kOwners = {{"/c/a", 0}, {"/c/b", 1}, {"/c/c", 2}};

std::vector<LocatedColumn> columns() {
  return {column("user", "part_1_2", "step_filter", "/c/b"), column("user", "part_0_2", "embedding", "/c/a"),
          column("user", "part_0_2", "step_filter", "/c/c"), column("user", "part_1_2", "embedding", "/c/a"),
          column("item", "part_0_2", "embedding", "/c/b"), column("item", "part_1_2", "embedding", "/c/c")};
}

TEST(EvictionPlanTest, StepEvictionDecidesThePartsOfTablesWithAStepFilter) {
  EvictionSettings s;
  s.rules.older_than = 100;
  s.global_steps = {{"user", 5000}};
  auto plan = plan_eviction(columns(), s, kOwners);
  ASSERT_EQ(plan.size(), 2u);  // item has no step_filter: exported whole
  EXPECT_EQ(plan[0].part, (PartId{"user", "part_0_2"}));
  EXPECT_EQ(plan[0].counter, 2);  // where its step_filter lies
  ASSERT_TRUE(plan[0].decision.step_filter);
  EXPECT_FALSE(plan[0].decision.embedding);
  EXPECT_EQ(plan[0].decision.global_step, 5000);
  EXPECT_EQ(plan[0].decision.older_than, 100u);
  EXPECT_EQ(plan[1].counter, 1);
}

TEST(EvictionPlanTest, ADeltaDecidesEveryPartWithAStepFilterWhateverItsClock) {
  EvictionSettings s;
  s.changed_after = 100;
  auto plan = plan_eviction(columns(), s, kOwners);  // no global steps: a delta does not need them
  ASSERT_EQ(plan.size(), 2u);                         // item has no step_filter: exported whole
  EXPECT_EQ(plan[0].decision.changed_after, std::optional<int64_t>(100));
  EXPECT_FALSE(plan[0].decision.older_than);
  s.rules.older_than = 50;
  s.global_steps = {{"user", 5000}};
  plan = plan_eviction(columns(), s, kOwners);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[1].decision.older_than, std::optional<uint64_t>(50));
  EXPECT_EQ(plan[1].decision.changed_after, std::optional<int64_t>(100));
  EXPECT_EQ(plan[1].decision.global_step, 5000);
}

TEST(EvictionPlanTest, BothRulesJoinAPartsColumnsAndNormAloneCoversEveryTable) {
  EvictionSettings s;
  s.rules.older_than = 100;
  s.rules.l2_below = 0.5f;
  s.global_steps = {{"user", 5000}};
  auto plan = plan_eviction(columns(), s, kOwners);
  ASSERT_EQ(plan.size(), 4u);
  const auto user0 = std::find_if(plan.begin(), plan.end(), [](const auto& p) { return p.part == PartId{"user", "part_0_2"}; });
  ASSERT_NE(user0, plan.end());
  EXPECT_TRUE(user0->decision.step_filter && user0->decision.embedding);
  EXPECT_EQ(user0->counter, 2);  // the step_filter's file, even though the embedding's comes first
  const auto item1 = std::find_if(plan.begin(), plan.end(), [](const auto& p) { return p.part == PartId{"item", "part_1_2"}; });
  ASSERT_NE(item1, plan.end());
  EXPECT_FALSE(item1->decision.step_filter);
  EXPECT_EQ(item1->decision.l2_below, 0.5f);
  EXPECT_EQ(item1->counter, 2);

  auto reversed = columns();
  std::reverse(reversed.begin(), reversed.end());
  auto again = plan_eviction(reversed, s, kOwners);
  ASSERT_EQ(again.size(), plan.size());
  for (size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(again[i].part, plan[i].part);
    EXPECT_EQ(again[i].counter, plan[i].counter);
  }
}

TEST(EvictionPlanTest, ADecisionColumnWithOtherRowsThanItsIdIsBadInputNamingThePart) {
  std::vector<LocatedColumn> found = columns();
  EXPECT_TRUE(check_decision_rows(found));  // no id column found: nothing to compare
  found.push_back(column("user", "part_1_2", "id", "/c/c"));
  EXPECT_TRUE(check_decision_rows(found));  // equal rows
  found.back().column.rows = 9;
  auto bad = check_decision_rows(found);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ExitCode::kBadInput);
  EXPECT_EQ(bad.error().describe(), "/c/b: tensor \"user.step_filter/part_1_2\" has 10 rows but its part's "
                                    "\"user.id/part_1_2\" has 9");
}

}  // namespace
}  // namespace recis_convert
