#include "recis_convert/transforms/slot_filter.h"

#include <gtest/gtest.h>

namespace recis_convert {
namespace {

KeyClass sparse(const std::string& slot) {
  KeyClass k;
  k.sparse = true;
  k.sparse_key = {"user", slot, "00000@65536@65536"};
  return k;
}

KeyClass dense(const std::string& name) {
  KeyClass k;
  k.dense_name = name;
  return k;
}

TEST(SlotFilterTest, FilterDropsOptimizerSlotsAndScalarsOnly) {
  OptimizerSlotFilter filter(true, {});
  EXPECT_TRUE(filter.keeps(sparse("id")));
  EXPECT_TRUE(filter.keeps(sparse("embedding")));
  EXPECT_TRUE(filter.keeps(sparse("step_filter")));
  EXPECT_FALSE(filter.keeps(sparse("sparse_adamw_exp_avg")));
  EXPECT_FALSE(filter.keeps(sparse("sparse_adam_exp_avg_sq")));
  EXPECT_FALSE(filter.keeps(sparse("sparse_adagrad_state_sum")));
  EXPECT_FALSE(filter.keeps(dense("sparse_adamw_step")));
  EXPECT_FALSE(filter.keeps(dense("sparse_adam_beta1")));
  EXPECT_TRUE(filter.keeps(dense("global_scale")));
  EXPECT_FALSE(filter.is_identity());
}

TEST(SlotFilterTest, WithoutFilterEverythingIsKept) {
  OptimizerSlotFilter filter(false, {});
  EXPECT_TRUE(filter.is_identity());
  EXPECT_TRUE(filter.keeps(sparse("sparse_adamw_exp_avg")));
  EXPECT_TRUE(filter.keeps(dense("sparse_adamw_step")));
}

TEST(SlotFilterTest, DropSlotDropsNamedSlotsOnly) {
  OptimizerSlotFilter filter(false, {"step_filter"});
  EXPECT_FALSE(filter.is_identity());
  EXPECT_FALSE(filter.keeps(sparse("step_filter")));
  EXPECT_TRUE(filter.keeps(sparse("sparse_adamw_exp_avg")));
  EXPECT_TRUE(filter.keeps(dense("step_filter")));  // a dense name is not a slot
}

TEST(SlotFilterTest, AsARowTransformItDropsSlotsAndNeverRewritesRows) {
  OptimizerSlotFilter filter(true, {"step_filter"});
  EXPECT_TRUE(filter.drops_anything());
  EXPECT_FALSE(filter.keeps(SlotRef{"user", "sparse_adamw_exp_avg", "", ""}));
  EXPECT_FALSE(filter.keeps(SlotRef{"user", "step_filter", "", ""}));
  EXPECT_TRUE(filter.keeps(SlotRef{"user", "embedding", "", ""}));
  EXPECT_FALSE(filter.rewrites(SlotRef{"user", "embedding", "", ""}));
  EXPECT_FALSE(OptimizerSlotFilter(false, {}).drops_anything());
}

}  // namespace
}  // namespace recis_convert
