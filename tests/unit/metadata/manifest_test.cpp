#include "recis_convert/metadata/manifest.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace recis_convert {
namespace {

TEST(ManifestTest, DescribesFilesTablesAndDroppedBytes) {
  ManifestInput input;
  input.tool_version = "1.2.3";
  input.source_checkpoint = "/data/out/ckpt_200";
  input.ckpt_id = "ckpt_200";
  input.filter_optimizer = true;
  FileResult a;
  a.name = "model-000000-of-000002.safetensors";
  a.source_bytes = 1000;
  a.written = true;
  a.output_bytes = 400;
  a.checksum = 0xabc;
  TensorInfo kept;
  kept.name = "user.id/part_0_1";
  kept.dtype_spelling = "I64";
  kept.shape = {3};
  kept.end = 24;
  TensorInfo dropped = kept;
  dropped.name = "user.sparse_adamw_exp_avg/part_0_1";
  dropped.end = 600;
  TensorInfo scalar = kept;
  scalar.name = "sparse_adamw_step^ ";
  scalar.end = 8;
  a.kept = {kept};
  a.dropped = {dropped, scalar};
  FileResult b;
  b.name = "model-000001-of-000002.safetensors";
  b.source_bytes = 50;
  input.files = {a, b};
  input.metadata_files = {{"index", 10, 0x1}};
  input.tables = {{"user", 3, 8, "F32", {"id", "embedding"}, 1, ""}};

  auto j = nlohmann::json::parse(make_manifest_json(input));
  EXPECT_EQ(j.at("tool").at("version"), "1.2.3");
  EXPECT_EQ(j.at("source").at("ckpt_id"), "ckpt_200");
  EXPECT_EQ(j.at("options").at("filter_optimizer"), true);
  ASSERT_EQ(j.at("data_files").size(), 1u);
  EXPECT_EQ(j.at("data_files")[0].at("xxh3_64"), "0000000000000abc");
  EXPECT_EQ(j.at("data_files")[0].at("bytes"), 400);
  EXPECT_EQ(j.at("data_files_not_written"), nlohmann::json({"model-000001-of-000002.safetensors"}));
  EXPECT_EQ(j.at("tables").at("user").at("rows"), 3);
  EXPECT_EQ(j.at("totals").at("bytes_in"), 1050);
  EXPECT_EQ(j.at("totals").at("dropped_bytes"), 608);
  EXPECT_EQ(j.at("totals").at("dropped_by_slot").at("sparse_adamw_exp_avg").at("bytes"), 600);
  EXPECT_EQ(j.at("totals").at("dropped_by_slot").at("sparse_adamw_step").at("tensors"), 1);
  EXPECT_EQ(j.at("metadata_files")[0].at("name"), "index");
  EXPECT_EQ(j.at("kind"), "full");
  EXPECT_TRUE(j.at("step").is_null());  // nothing recorded one
  EXPECT_FALSE(j.contains("base_step"));
  EXPECT_FALSE(j.at("tables").at("user").contains("delta"));
}

TEST(ManifestTest, ADeltaSaysItsBaseAndWhichTablesItCarriesWhole) {
  ManifestInput input;
  input.tables = {{"user", 3, 8, "F32", {"id", "embedding", "step_filter"}, 1, ""},
                  {"item", 5, 4, "F32", {"id", "embedding"}, 1, ""}};
  input.clock.tables = {{"user", GlobalStep{200, "extra.pt global_step"}}};
  input.clock.step = GlobalStep{200, "extra.pt global_step"};
  auto full = nlohmann::json::parse(make_manifest_json(input));
  EXPECT_EQ(full.at("kind"), "full");
  EXPECT_EQ(full.at("step"), 200);
  input.delta_base = 100;
  auto j = nlohmann::json::parse(make_manifest_json(input));
  EXPECT_EQ(j.at("kind"), "delta");
  EXPECT_EQ(j.at("base_step"), 100);
  EXPECT_EQ(j.at("step"), 200);
  EXPECT_EQ(j.at("options").at("delta_since"), 100);
  EXPECT_EQ(j.at("tables").at("user").at("delta"), "changed");
  EXPECT_EQ(j.at("tables").at("user").at("global_step").at("step"), 200);
  EXPECT_EQ(j.at("tables").at("item").at("delta"), "full");
  EXPECT_FALSE(j.at("tables").at("item").contains("global_step"));
}

}  // namespace
}  // namespace recis_convert
