#include "recis_convert/metadata/delta_base.h"

#include <gtest/gtest.h>

#include "test_files.h"

namespace recis_convert {
namespace {

TEST(DeltaBaseTest, AStepIsTakenAsGiven) {
  EXPECT_EQ(resolve_delta_base("0").value(), 0);
  EXPECT_EQ(resolve_delta_base("150").value(), 150);
  EXPECT_EQ(resolve_delta_base("1234567890123456789").error().code, ExitCode::kUsage);
}

TEST(DeltaBaseTest, AnExportGivesItsManifestsStep) {
  testing::TempDir dir;
  testing::write_file(dir.file("manifest.json"), R"({"kind": "full", "step": 100})");
  EXPECT_EQ(resolve_delta_base(dir.path()).value(), 100);
  testing::write_file(dir.file("manifest.json"), R"({"kind": "delta", "base_step": 100, "step": 150})");
  EXPECT_EQ(resolve_delta_base(dir.path()).value(), 150);
}

TEST(DeltaBaseTest, AnExportWithoutAStepCannotBeABase) {
  testing::TempDir dir;
  for (const char* manifest : {R"({"manifest_version": 1})", R"({"step": null})", R"({"step": -3})",
                               R"({"step": "100"})", "[]"}) {
    testing::write_file(dir.file("manifest.json"), manifest);
    auto base = resolve_delta_base(dir.path());
    ASSERT_FALSE(base) << manifest;
    EXPECT_EQ(base.error().code, ExitCode::kBadInput);
    EXPECT_NE(base.error().describe().find("manifest.json"), std::string::npos);
  }
}

TEST(DeltaBaseTest, NeitherAStepNorADirectoryIsAUsageError) {
  EXPECT_EQ(resolve_delta_base("").error().code, ExitCode::kUsage);
  EXPECT_EQ(resolve_delta_base("/no/such/export").error().code, ExitCode::kUsage);
  EXPECT_EQ(resolve_delta_base("-5").error().code, ExitCode::kUsage);
  testing::TempDir empty;
  EXPECT_EQ(resolve_delta_base(empty.path()).error().code, ExitCode::kBadInput);  // no manifest.json
}

}  // namespace
}  // namespace recis_convert
