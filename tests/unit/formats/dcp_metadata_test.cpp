// The .metadata reader against a checkpoint torch 2.6 wrote (tests/fixtures/dcp-torch2.6) and variants of it, each
// wrong in one way.
#include "recis_convert/formats/dcp_metadata.h"

#include <gtest/gtest.h>

#include <map>

#include "recis_convert/formats/strict_json.h"  // read_small_file

namespace recis_convert {
namespace {

const std::string kFixture = std::string(RECIS_SOURCE_DIR) + "/tests/fixtures/dcp-torch2.6";
const std::string kTables = "model.embedding_group.";

std::map<std::string, DcpTensor> by_fqn(const DcpMetadata& md) {
  std::map<std::string, DcpTensor> out;
  for (const auto& t : md.tensors) out[t.fqn] = t;
  return out;
}

using Sizes = std::vector<uint64_t>;

TEST(DcpMetadataTest, ReadsEveryTensorTorchWrote) {
  auto md = read_dcp_metadata(kFixture + "/model");
  ASSERT_TRUE(md) << md.error().describe();
  EXPECT_EQ(md.value().tensors.size(), 15u);
  EXPECT_TRUE(md.value().byte_items.empty());
  auto t = by_fqn(md.value());
  const DcpTensor& user = t.at(kTables + "emb_impls.all.ebc.embedding_bags.user_id.weight");
  EXPECT_EQ(user.dtype, DType::kF32);
  EXPECT_EQ(user.shape, (Sizes{1000, 16}));
  ASSERT_EQ(user.chunks.size(), 3u);
  EXPECT_EQ(user.chunks[1].offsets, (Sizes{334, 0}));
  EXPECT_EQ(user.chunks[1].sizes, (Sizes{334, 16}));
  EXPECT_EQ(user.chunks[1].file, "__1_0.distcp");
  EXPECT_GT(user.chunks[1].item_length, 334u * 16 * 4);
  EXPECT_EQ(t.at(kTables + "emb_impls.all.ebc.embedding_bags.cate.weight").dtype, DType::kF16);
  EXPECT_EQ(t.at(kTables + "seq_emb_impls.all.ec_list.0.embeddings.seq_item.weight").dtype, DType::kBF16);
  const DcpTensor& steps = t.at("model.dense.bn.num_batches_tracked");
  EXPECT_EQ(steps.dtype, DType::kI64);
  EXPECT_TRUE(steps.shape.empty());
  EXPECT_EQ(steps.numel(), 1u);
}

TEST(DcpMetadataTest, ChunksComeInOffsetOrderWhateverRankWroteThem) {
  auto md = read_dcp_metadata(kFixture + "/model");
  ASSERT_TRUE(md);
  const auto tensors = by_fqn(md.value());
  const DcpTensor& cate = tensors.at(kTables + "emb_impls.all.ebc.embedding_bags.cate.weight");
  ASSERT_EQ(cate.chunks.size(), 6u);  // torch lists them 0, 6, 2, 8, 4, 10 (by rank)
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(cate.chunks[i].offsets, (Sizes{0, 2 * i}));
}

TEST(DcpMetadataTest, AnEmptyChunkAtTheTablesEndIsPartOfAnExactCover) {
  auto md = read_dcp_metadata(kFixture + "/model");
  ASSERT_TRUE(md);
  const auto tensors = by_fqn(md.value());
  const DcpTensor& item = tensors.at(kTables + "emb_impls.all.ebc.embedding_bags.item_id.weight");
  ASSERT_EQ(item.chunks.size(), 3u);
  EXPECT_EQ(item.chunks[2].offsets, (Sizes{777, 0}));
  EXPECT_EQ(item.chunks[2].numel(), 0u);
}

std::string error_of(const std::string& variant) {
  const std::string path = kFixture + "/hostile/" + variant + ".metadata";
  auto bytes = read_small_file(path, kMaxDcpMetadataBytes);
  if (!bytes) return bytes.error().describe();
  auto md = parse_dcp_metadata(bytes.value(), path);
  if (md) return "OK";
  EXPECT_EQ(md.error().code, ExitCode::kBadInput);
  return md.error().describe();
}

bool says(const std::string& error, const std::string& what) { return error.find(what) != std::string::npos; }

TEST(DcpMetadataTest, OverlappingChunksAreRefusedNamingTheTensor) {
  const std::string e = error_of("overlap");
  EXPECT_TRUE(says(e, "user_id.weight\": the chunk at [334,0] overlaps another chunk")) << e;
}

TEST(DcpMetadataTest, ChunksThatLeaveAGapAreRefused) {
  const std::string e = error_of("gap");
  EXPECT_TRUE(says(e, "user_id.weight\": its chunks do not cover it: no chunk holds the element at [333,0]")) << e;
}

TEST(DcpMetadataTest, AChunkOutsideItsTensorIsRefused) {
  const std::string e = error_of("outside");
  EXPECT_TRUE(says(e, "the chunk at [668,0] of size [333,16] lies outside its shape [1000,16]")) << e;
}

TEST(DcpMetadataTest, AChunkWithoutItsItemIsRefused) {
  EXPECT_TRUE(says(error_of("missing_item"), "the chunk at [0,0] has no stored item"));
}

TEST(DcpMetadataTest, AnItemOutsideTheDirectoryIsRefused) {
  EXPECT_TRUE(says(error_of("traversal"), "lies in \"../outside.distcp\", which is not a file of the checkpoint"));
}

TEST(DcpMetadataTest, AnItemStoredThroughATransformIsRefused) {
  EXPECT_TRUE(says(error_of("transformed"), "stored through a transform"));
}

TEST(DcpMetadataTest, AnyOtherGlobalIsRefusedNamingIt) {
  const std::string e = error_of("os_system");
  EXPECT_TRUE(says(e, ".metadata offset ")) << e;
  EXPECT_TRUE(says(e, "global posix.system is not allowed in a checkpoint's metadata (nothing is executed)")) << e;
}

TEST(DcpMetadataTest, ADTypeTheReaderDoesNotKnowIsRefused) {
  const std::string e = error_of("complex_dtype");
  EXPECT_TRUE(says(e, "global torch.complex64 is not allowed")) << e;
}

TEST(DcpMetadataTest, ACutFileIsRefused) { EXPECT_TRUE(says(error_of("truncated"), "pickle truncated")); }

TEST(DcpMetadataTest, AMissingMetadataIsBadInputNamingIt) {
  auto md = read_dcp_metadata(kFixture);
  ASSERT_FALSE(md);
  EXPECT_TRUE(says(md.error().describe(), "dcp-torch2.6/.metadata"));
}

}  // namespace
}  // namespace recis_convert
