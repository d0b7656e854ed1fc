#include "recis_convert/plan/merge_chain.h"

#include <gtest/gtest.h>

namespace recis_convert {
namespace {

ExportManifest full(int64_t step) {
  ExportManifest e;
  e.dir = "/e/full" + std::to_string(step);
  e.step = step;
  e.lineage = "/data/train/output";
  e.tables["user"] = ExportTable{{"id", "embedding", "step_filter"}, ""};
  e.tables["item"] = ExportTable{{"id", "embedding"}, ""};
  return e;
}

ExportManifest delta(int64_t base, int64_t step) {
  ExportManifest e = full(step);
  e.dir = "/e/delta" + std::to_string(base) + "-" + std::to_string(step);
  e.delta = true;
  e.base_step = base;
  return e;
}

std::string refusal(const ExportManifest& base, const std::vector<ExportManifest>& deltas) {
  auto checked = check_merge_chain(base, deltas);
  EXPECT_FALSE(checked);
  if (checked) return "";
  EXPECT_EQ(checked.error().code, ExitCode::kBadInput);
  return checked.error().describe();
}

TEST(MergeChainTest, DeltasInOrderGiveTheLastStep) {
  EXPECT_EQ(check_merge_chain(full(100), {delta(100, 200)}).value(), 200);
  EXPECT_EQ(check_merge_chain(full(100), {delta(100, 150), delta(150, 200)}).value(), 200);
  EXPECT_EQ(check_merge_chain(full(100), {delta(50, 150)}).value(), 150);  // overlapping is fine: upserts repeat
}

TEST(MergeChainTest, AGapOrABackwardStepIsRefusedNamingTheDelta) {
  std::string why = refusal(full(100), {delta(150, 200)});
  EXPECT_NE(why.find("/e/delta150-200"), std::string::npos) << why;
  EXPECT_NE(why.find("would be lost"), std::string::npos) << why;
  why = refusal(full(100), {delta(100, 200), delta(100, 150)});
  EXPECT_NE(why.find("/e/delta100-150"), std::string::npos) << why;
  EXPECT_NE(why.find("deltas go in order"), std::string::npos) << why;
}

TEST(MergeChainTest, TheBaseMustBeFullAndTheDeltasDeltas) {
  EXPECT_NE(refusal(delta(50, 100), {delta(100, 200)}).find("must be a full export"), std::string::npos);
  EXPECT_NE(refusal(full(100), {full(200)}).find("not a delta"), std::string::npos);
  EXPECT_NE(refusal(full(100), {}).find("no delta"), std::string::npos);
  ExportManifest stepless = full(100);
  stepless.step.reset();
  EXPECT_NE(refusal(stepless, {delta(100, 200)}).find("no \"step\""), std::string::npos);
  ExportManifest h5 = delta(100, 200);
  h5.hdf5 = true;
  EXPECT_NE(refusal(full(100), {h5}).find("model.h5"), std::string::npos);
}

TEST(MergeChainTest, TablesMustMatchInSlotsAndServingDtype) {
  ExportManifest other = delta(100, 200);
  other.tables["user"].quantization = "int8_rowwise";
  EXPECT_NE(refusal(full(100), {other}).find("int8_rowwise, the base's unquantized"), std::string::npos);
  other = delta(100, 200);
  other.tables["user"].slots = {"id", "embedding"};
  EXPECT_NE(refusal(full(100), {other}).find("other slots of table \"user\""), std::string::npos);
  other = delta(100, 200);
  other.tables["new"] = ExportTable{{"id", "embedding"}, ""};
  EXPECT_NE(refusal(full(100), {other}).find("has table \"new\""), std::string::npos);
  other = delta(100, 200);
  other.tables.erase("item");  // a delta may lack a table: it changed nothing there
  EXPECT_TRUE(check_merge_chain(full(100), {other}));
}

// A delta of another training run with the same steps would merge rows of two models into one export.
TEST(MergeChainTest, ADeltaOfAnotherTrainingRunIsRefused) {
  ExportManifest other = delta(100, 200);
  other.lineage = "/data/other-run/output";
  EXPECT_EQ(refusal(full(100), {other}),
            "/e/delta100-200: comes from the training run \"/data/other-run/output\", the base from "
            "\"/data/train/output\": a delta applies only to exports of its own run");
  ExportManifest unrecorded = delta(100, 200);
  unrecorded.lineage.clear();
  EXPECT_NE(refusal(full(100), {unrecorded}).find("comes from the training run (not recorded)"), std::string::npos);
  ExportManifest old_base = full(100);
  old_base.lineage.clear();
  EXPECT_NE(refusal(old_base, {delta(100, 200)}).find("records no lineage"), std::string::npos);
}

}  // namespace
}  // namespace recis_convert
