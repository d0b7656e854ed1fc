#include "recis_convert/sources/export_manifest.h"

#include <gtest/gtest.h>

#include "test_files.h"

namespace recis_convert {
namespace {

const char* kDelta = R"({"kind": "delta", "base_step": 100, "step": 200,
  "options": {"filter_optimizer": true},
  "metadata_files": [{"name": "index"}, {"name": "fg.json"}, {"name": "fx_user_model/user_model.pt"}],
  "asset_files": [{"name": "vocab.txt"}],
  "tables": {"user": {"slots": ["id", "embedding"], "quantization": "int8_rowwise"},
             "item": {"slots": ["id", "embedding"]}}})";

TEST(ExportManifestTest, ReadsKindStepsTablesAndTheFilesAMergeCarries) {
  testing::TempDir dir;
  testing::write_file(dir.file("manifest.json"), kDelta);
  auto m = read_export_manifest(dir.path());
  ASSERT_TRUE(m) << m.error().describe();
  EXPECT_TRUE(m.value().delta);
  EXPECT_EQ(m.value().step, std::optional<int64_t>(200));
  EXPECT_EQ(m.value().base_step, std::optional<int64_t>(100));
  EXPECT_FALSE(m.value().hdf5);
  EXPECT_EQ(m.value().tables.at("user").quantization, "int8_rowwise");
  EXPECT_EQ(m.value().tables.at("item").quantization, "");
  ASSERT_EQ(m.value().carried.size(), 3u);  // index is written anew
  EXPECT_EQ(m.value().carried[0].name, "fg.json");
  EXPECT_EQ(m.value().carried[1].name, "fx_user_model/user_model.pt");
  EXPECT_TRUE(m.value().carried[2].asset);
  EXPECT_EQ(m.value().options.at("filter_optimizer"), true);
}

TEST(ExportManifestTest, WhatCannotBeMergedIsBadInputNamingTheManifest) {
  testing::TempDir dir;
  for (const char* text : {R"({"manifest_version": 1})",                        // before kinds were recorded
                           R"({"kind": "delta", "step": 200, "options": {}, "tables": {}, "metadata_files": []})",
                           R"({"kind": "partial", "options": {}, "tables": {}, "metadata_files": []})",
                           R"({"kind": "full", "options": {}, "tables": {},
                               "metadata_files": [{"name": "../../etc/passwd"}]})"}) {
    testing::write_file(dir.file("manifest.json"), text);
    auto m = read_export_manifest(dir.path());
    ASSERT_FALSE(m) << text;
    EXPECT_EQ(m.error().code, ExitCode::kBadInput);
    EXPECT_NE(m.error().describe().find("manifest.json"), std::string::npos) << m.error().describe();
  }
  testing::TempDir empty;
  auto none = read_export_manifest(empty.path());
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().describe().find("not an export directory"), std::string::npos);
}

}  // namespace
}  // namespace recis_convert
