#include "recis_convert/transforms/row_transform.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "recis_convert/transforms/job_transforms.h"
#include "recis_convert/transforms/embedding_codecs.h"

namespace recis_convert {
namespace {

const EmbeddingDTypes kInt8Everywhere{ServingDType::kInt8, {}};

const RowLayout kF32Rows = RowLayout::of_tensor(DType::kF32, "F32", {5, 3});

SlotRef slot(const std::string& name) { return {"user", name, "user." + name + "/part_0_1", "file.safetensors"}; }

TEST(RowTransformTest, LayoutOfATensorIsItsShapeWithoutTheRowDimension) {
  EXPECT_EQ(kF32Rows.row_shape, (std::vector<uint64_t>{3}));
  EXPECT_EQ(kF32Rows.row_bytes(), 12u);
  EXPECT_EQ(RowLayout::of_tensor(DType::kI64, "I64", {7}).row_bytes(), 8u);
}

TEST(RowTransformTest, AnEmptyChainKeepsAndPassesEverything) {
  RowTransformChain chain;
  EXPECT_TRUE(chain.is_identity());
  EXPECT_FALSE(chain.drops_anything());
  auto rows = chain.prepare(slot("embedding"), kF32Rows);
  ASSERT_TRUE(rows);
  EXPECT_TRUE(rows.value().kept());
  EXPECT_FALSE(rows.value().rewritten());
  EXPECT_EQ(rows.value().output().row_bytes(), 12u);
}

TEST(RowTransformTest, TheFilterDropsBeforeTheQuantizerIsAsked) {
  const RowTransformChain chain = make_row_transforms(true, {"embedding"}, kInt8Everywhere);
  EXPECT_FALSE(chain.is_identity());
  EXPECT_TRUE(chain.drops_anything());
  EXPECT_FALSE(chain.keeps_dense("sparse_adamw_step"));
  EXPECT_TRUE(chain.keeps_dense("global_step"));
  // a 1-D "embedding" would be refused by the quantizer, but the filter drops the slot first
  auto dropped = chain.prepare(slot("embedding"), RowLayout::of_tensor(DType::kF32, "F32", {5}));
  ASSERT_TRUE(dropped) << dropped.error().describe();
  EXPECT_FALSE(dropped.value().kept());
  auto optimizer = chain.prepare(slot("sparse_adamw_exp_avg"), kF32Rows);
  ASSERT_TRUE(optimizer);
  EXPECT_FALSE(optimizer.value().kept());
}

TEST(RowTransformTest, QuantizedEmbeddingRowsTakeTheInt8Layout) {
  const RowTransformChain chain = make_row_transforms(true, {}, kInt8Everywhere);
  auto ids = chain.prepare(slot("id"), RowLayout::of_tensor(DType::kI64, "I64", {5}));
  ASSERT_TRUE(ids);
  EXPECT_FALSE(ids.value().rewritten());
  auto rows = chain.prepare(slot("embedding"), kF32Rows);
  ASSERT_TRUE(rows) << rows.error().describe();
  ASSERT_TRUE(rows.value().rewritten());
  const RowLayout& out = rows.value().output();
  EXPECT_EQ(out.dtype, DType::kU8);
  EXPECT_EQ(out.dtype_spelling, "U8");
  EXPECT_EQ(out.row_shape, (std::vector<uint64_t>{3 + 8}));  // codes, float32 scale and bias
  EXPECT_EQ(out.encoding, "int8_rowwise");

  const float values[] = {-1.0f, 0.0f, 1.0f, 2.0f, 2.0f, 2.0f};
  std::vector<unsigned char> bytes;
  ASSERT_TRUE(rows.value().apply(reinterpret_cast<const unsigned char*>(values), 2, 0, bytes));
  ASSERT_EQ(bytes.size(), 2 * out.row_bytes());
  std::vector<unsigned char> want(out.row_bytes());
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(encode_row(ServingDType::kInt8, values + 3 * r, 3, want.data()), EncodeVerdict::kOk);
    EXPECT_EQ(std::memcmp(bytes.data() + r * out.row_bytes(), want.data(), want.size()), 0) << "row " << r;
  }
}

TEST(RowTransformTest, QuantizerErrorsNameTheFileTensorAndRow) {
  const RowTransformChain chain = make_row_transforms(false, {}, kInt8Everywhere);
  auto wrong = chain.prepare(slot("embedding"), RowLayout::of_tensor(DType::kI64, "I64", {5, 3}));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ExitCode::kBadInput);
  EXPECT_EQ(wrong.error().file, "file.safetensors");
  EXPECT_NE(wrong.error().message.find("\"user.embedding/part_0_1\"), I64 2-D, cannot become int8"), std::string::npos)
      << wrong.error().message;

  auto rows = chain.prepare(slot("embedding"), kF32Rows);
  ASSERT_TRUE(rows);
  const float values[] = {1.0f, 2.0f, 3.0f, 1.0f, std::nanf(""), 3.0f};
  std::vector<unsigned char> bytes;
  auto failed = rows.value().apply(reinterpret_cast<const unsigned char*>(values), 2, 40, bytes);
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("row 41 holds a NaN"), std::string::npos) << failed.error().message;
}

}  // namespace
}  // namespace recis_convert
