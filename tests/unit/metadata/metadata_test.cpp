#include "recis_convert/metadata/metadata.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "block_catalogs.h"

namespace recis_convert {
namespace {

TensorInfo tensor(const std::string& name, const std::string& dtype, std::vector<uint64_t> shape) {
  TensorInfo t;
  t.name = name;
  t.dtype_spelling = dtype;
  t.dtype = *parse_dtype(dtype);
  t.shape = std::move(shape);
  return t;
}

const BlockCatalog kTensorKey = testing::catalog_of({
    {"user.id/part_0_2", 0, "user@id^00000@32768@65536"},
    {"user.id/part_1_2", 2, "user@id^32768@65536@65536"},
    {"user.embedding/part_0_2", 2, "user@embedding^00000@32768@65536"},
    {"user.embedding/part_1_2", 2, "user@embedding^32768@65536@65536"},
    {"user.step_filter/part_0_2", 2, "user@step_filter^00000@32768@65536"},
    {"sparse_adamw_step^ ", 0, ""},
});

std::vector<FileResult> files() {
  FileResult a, b, c;
  a.name = "model-000000-of-000004.safetensors";
  a.written = true;
  a.kept = {tensor("user.id/part_0_2", "I64", {3}), tensor("sparse_adamw_step^ ", "I64", {1})};
  b.name = "model-000001-of-000004.safetensors";
  b.written = false;
  c.name = "model-000002-of-000004.safetensors";
  c.written = true;
  c.kept = {tensor("user.embedding/part_0_2", "F32", {3, 8}), tensor("user.step_filter/part_0_2", "I64", {3, 1}),
            tensor("user.id/part_1_2", "I64", {2}), tensor("user.embedding/part_1_2", "F32", {2, 8})};
  return {a, b, c};
}

TEST(MetadataTest, IndexNumbersWrittenFilesInNameOrderWithSortedCompactKeys) {
  EXPECT_EQ(make_index_json(files()),
            R"({"block_index":{"sparse_adamw_step^ ":0,"user.embedding/part_0_2":1,"user.embedding/part_1_2":1,)"
            R"("user.id/part_0_2":0,"user.id/part_1_2":1,"user.step_filter/part_0_2":1},)"
            R"("file_index":{"model-000000-of-000004.safetensors":0,"model-000002-of-000004.safetensors":1}})");
}

TEST(MetadataTest, TensorkeyListsExportedSparseKeysWithFourSpaceIndentAndNoNewline) {
  EXPECT_EQ(make_tensorkey_json(files(), kTensorKey),
            "{\n"
            "    \"user.embedding/part_0_2\": \"user@embedding^00000@32768@65536\",\n"
            "    \"user.embedding/part_1_2\": \"user@embedding^32768@65536@65536\",\n"
            "    \"user.id/part_0_2\": \"user@id^00000@32768@65536\",\n"
            "    \"user.id/part_1_2\": \"user@id^32768@65536@65536\",\n"
            "    \"user.step_filter/part_0_2\": \"user@step_filter^00000@32768@65536\"\n"
            "}");
}

TEST(MetadataTest, EmptyTensorkeyIsEmptyObject) { EXPECT_EQ(make_tensorkey_json({}, kTensorKey), "{}"); }

TEST(MetadataTest, TorchRankListsEmbeddingsAsHashmapsAndDenseScalars) {
  std::string text = make_torch_rank_json(files(), kTensorKey);
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j.size(), 3u);  // two embeddings, one dense scalar; ids and step_filter are not listed
  const auto& emb = j.at("user.embedding/part_1_2");
  EXPECT_EQ(emb.at("dense"), false);
  EXPECT_EQ(emb.at("dimension"), 8);
  EXPECT_EQ(emb.at("dtype"), "float32");
  EXPECT_EQ(emb.at("hashmap_key"), "user.id/part_1_2");
  EXPECT_EQ(emb.at("hashmap_key_dtype"), "int64");
  EXPECT_EQ(emb.at("hashmap_value"), "user.embedding/part_1_2");
  EXPECT_EQ(emb.at("is_hashmap"), true);
  EXPECT_EQ(emb.at("shape"), nlohmann::json({2, 8}));
  const auto& step = j.at("sparse_adamw_step^ ");
  EXPECT_EQ(step.at("dense"), true);
  EXPECT_EQ(step.at("dimension"), 0);
  EXPECT_EQ(step.at("dtype"), "int64");
  EXPECT_EQ(step.at("is_hashmap"), false);
  // nlohmann dump(4): sorted fields, one array element per line, no trailing newline
  EXPECT_NE(text.find("\"sparse_adamw_step^ \": {\n        \"dense\": true,\n        \"dimension\": 0,\n"
                      "        \"dtype\": \"int64\",\n        \"is_hashmap\": false,\n"
                      "        \"name\": \"sparse_adamw_step^ \",\n        \"shape\": [\n            1\n        ]\n    }"),
            std::string::npos);
  EXPECT_NE(text.back(), '\n');
}

TEST(MetadataTest, HashmapKeyReplacesOnlyTheFirstEmbedding) {
  FileResult f;
  f.written = true;
  f.kept = {tensor("x.embedding_bags.y.embedding/part_0_1", "F32", {1, 4})};
  const BlockCatalog tk = testing::catalog_of(
      {{"x.embedding_bags.y.embedding/part_0_1", 0, "x.embedding_bags.y@embedding^00000@65536@65536"}});
  auto j = nlohmann::json::parse(make_torch_rank_json({f}, tk));
  EXPECT_EQ(j.begin().value().at("hashmap_key"), "x.id_bags.y.embedding/part_0_1");  // RecIS's first-occurrence rule
}

TEST(MetadataTest, SummarizesTablesOverParts) {
  auto tables = summarize_tables(kept_in_key_order(files(), kTensorKey), "ckpt");
  ASSERT_TRUE(tables) << tables.error().describe();
  ASSERT_EQ(tables.value().size(), 1u);
  const auto& user = tables.value()[0];
  EXPECT_EQ(user.child, "user");
  EXPECT_EQ(user.rows, 5u);
  EXPECT_EQ(user.dim, 8u);
  EXPECT_EQ(user.dtype, "F32");
  EXPECT_EQ(user.parts, 2u);
  EXPECT_EQ(user.slots, (std::vector<std::string>{"id", "embedding", "step_filter"}));
}

TEST(MetadataTest, SlotRowsDifferentFromIdRowsIsBadInput) {
  auto f = files();
  f[2].kept[0].shape = {4, 8};  // user.embedding/part_0_2 has 4 rows, its id 3
  auto tables = summarize_tables(kept_in_key_order(f, kTensorKey), "ckpt");
  ASSERT_FALSE(tables);
  EXPECT_EQ(tables.error().code, ExitCode::kBadInput);
  EXPECT_NE(tables.error().message.find("has 4 rows but its id has 3"), std::string::npos);
}

TEST(MetadataTest, PartWithoutIdIsBadInput) {
  auto f = files();
  f[0].kept.erase(f[0].kept.begin());  // drop user.id/part_0_2
  auto tables = summarize_tables(kept_in_key_order(f, kTensorKey), "ckpt");
  ASSERT_FALSE(tables);
  EXPECT_NE(tables.error().message.find("no id tensor"), std::string::npos);
}

}  // namespace
}  // namespace recis_convert
