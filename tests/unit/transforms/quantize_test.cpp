#include "recis_convert/transforms/quantize.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "recis_convert/sinks/copy_engine.h"
#include "recis_convert/sinks/file_layout.h"
#include "recis_convert/transforms/embedding_codecs.h"
#include "test_files.h"

namespace recis_convert {
namespace {

const SlotRef kEmbedding{"t", "embedding", "t.embedding/part_0_1", "src"};

RowTransformChain quantizing(EmbeddingDTypes dtypes, QuantizationLedger* ledger = nullptr) {
  RowTransformChain chain;
  chain.add(std::make_unique<EmbeddingQuantizer>(std::move(dtypes), ledger));
  return chain;
}

EmbeddingDTypes every_table(ServingDType dtype) {
  EmbeddingDTypes d;
  d.all = dtype;
  return d;
}

TEST(QuantizeTest, EachDtypeHasPyTorchsRowLayout) {
  const RowLayout f32 = RowLayout::of_tensor(DType::kF32, "F32", {10, 8});
  const struct {
    ServingDType dtype;
    const char* spelling;
    uint64_t width;
    const char* encoding;
  } cases[] = {{ServingDType::kFp16, "F16", 8, "fp16"},        {ServingDType::kBf16, "BF16", 8, "bf16"},
               {ServingDType::kInt8, "U8", 16, "int8_rowwise"}, {ServingDType::kInt4, "U8", 8, "int4_rowwise"},
               {ServingDType::kInt2, "U8", 6, "int2_rowwise"}};
  for (const auto& c : cases) {
    auto rows = quantizing(every_table(c.dtype)).prepare(kEmbedding, f32);
    ASSERT_TRUE(rows) << rows.error().describe();
    EXPECT_TRUE(rows.value().rewritten());
    EXPECT_EQ(rows.value().output().dtype_spelling, c.spelling);
    EXPECT_EQ(rows.value().output().row_shape, std::vector<uint64_t>{c.width});
    EXPECT_EQ(rows.value().output().encoding, c.encoding);
  }
  // other slots pass unchanged
  auto ids = quantizing(every_table(ServingDType::kInt4)).prepare({"t", "id", "t.id/part_0_1", "src"},
                                                                  RowLayout::of_tensor(DType::kI64, "I64", {10}));
  ASSERT_TRUE(ids);
  EXPECT_FALSE(ids.value().rewritten());
}

TEST(QuantizeTest, ATableOverrideAppliesToThatTableOnly) {
  EmbeddingDTypes d = every_table(ServingDType::kInt8);
  d.tables["t"] = ServingDType::kNone;
  d.tables["u"] = ServingDType::kFp16;
  const RowLayout f32 = RowLayout::of_tensor(DType::kF32, "F32", {10, 8});
  auto t = quantizing(d).prepare(kEmbedding, f32);
  ASSERT_TRUE(t);
  EXPECT_FALSE(t.value().rewritten());
  auto u = quantizing(d).prepare({"u", "embedding", "u.embedding/part_0_1", "src"}, f32);
  ASSERT_TRUE(u);
  EXPECT_EQ(u.value().output().encoding, "fp16");
  auto v = quantizing(d).prepare({"v", "embedding", "v.embedding/part_0_1", "src"}, f32);
  ASSERT_TRUE(v);
  EXPECT_EQ(v.value().output().encoding, "int8_rowwise");
}

TEST(QuantizeTest, ADimTheDtypeCannotPackIsBadInputNamingTableAndDim) {
  auto rows = quantizing(every_table(ServingDType::kInt2)).prepare(kEmbedding,
                                                                   RowLayout::of_tensor(DType::kF32, "F32", {3, 6}));
  ASSERT_FALSE(rows);
  EXPECT_EQ(rows.error().code, ExitCode::kBadInput);
  EXPECT_EQ(rows.error().file, "src");
  EXPECT_NE(rows.error().message.find("table \"t\""), std::string::npos) << rows.error().message;
  EXPECT_NE(rows.error().message.find("dim 6: int2 needs a dim divisible by 4"), std::string::npos)
      << rows.error().message;
  auto ints = quantizing(every_table(ServingDType::kFp16)).prepare(kEmbedding,
                                                                   RowLayout::of_tensor(DType::kI64, "I64", {3, 4}));
  ASSERT_FALSE(ints);
  EXPECT_NE(ints.error().message.find("cannot become fp16"), std::string::npos) << ints.error().message;
}

TEST(QuantizeTest, ABadRowIsBadInputNamingTableAndRow) {
  const float rows[] = {1, 2, 3, 4, 1, std::numeric_limits<float>::quiet_NaN(), 0, 0, 70000, 0, 0, 0};
  const RowTransformChain chain = quantizing(every_table(ServingDType::kFp16));  // outlives the SlotRows
  auto prepared = chain.prepare(kEmbedding, RowLayout::of_tensor(DType::kF32, "F32", {3, 4}));
  ASSERT_TRUE(prepared);
  std::vector<unsigned char> out;
  auto nan = prepared.value().apply(reinterpret_cast<const unsigned char*>(rows), 3, 40, out);
  ASSERT_FALSE(nan);
  EXPECT_EQ(nan.error().code, ExitCode::kBadInput);
  EXPECT_EQ(nan.error().message,
            "table \"t\", tensor \"t.embedding/part_0_1\" row 41 holds a NaN or infinite value: it cannot be "
            "converted to fp16");
  auto big = prepared.value().apply(reinterpret_cast<const unsigned char*>(rows + 8), 1, 7, out);
  ASSERT_FALSE(big);
  EXPECT_NE(big.error().message.find("row 7 holds values that fp16 cannot represent"), std::string::npos)
      << big.error().message;
}

TEST(QuantizeTest, TheLedgerMeasuresEveryConvertedRow) {
  QuantizationLedger ledger;
  const RowTransformChain chain = quantizing(every_table(ServingDType::kInt2), &ledger);
  auto prepared = chain.prepare(kEmbedding, RowLayout::of_tensor(DType::kF32, "F32", {2, 4}));
  ASSERT_TRUE(prepared);
  ASSERT_EQ(ledger.tables.count("t"), 1u);  // noted when the layout was decided, before any row
  EXPECT_EQ(ledger.tables["t"].source_dtype(), "F32");
  EXPECT_EQ(ledger.tables["t"].dim, 4u);
  const float rows[] = {-1, 0, 1, 2, 0, 0.1f, 0.2f, 0.3f};
  std::vector<unsigned char> out;
  ASSERT_TRUE(prepared.value().apply(reinterpret_cast<const unsigned char*>(rows), 2, 0, out));
  const QuantizationError& e = ledger.tables["t"].error;
  EXPECT_EQ(e.rows, 2u);
  EXPECT_EQ(e.elements, 8u);
  QuantizationError expected;  // the same rows decoded as PyTorch's unpack would
  std::vector<float> back(4);
  for (int r = 0; r < 2; ++r) {
    decode_row(ServingDType::kInt2, out.data() + r * 5, 4, back.data());
    expected.add_row(rows + r * 4, back.data(), 4);
  }
  EXPECT_TRUE(e.abs_sum == expected.abs_sum);
  EXPECT_GT(e.figures().max_abs, 0.0);
}

TEST(QuantizeTest, PlanAndEngineWriteQuantizedRowsInChunks) {
  // one id tensor (copied) and one 3000 x 4 F32 embedding (quantized through a 4 KiB buffer: many chunks)
  const uint64_t rows = 3000, dim = 4;
  std::string ids(rows * 8, '\0'), rows_bytes(rows * dim * 4, '\0');
  std::vector<float> values(rows * dim);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>((i * 7919) % 1000) / 37.0f - 10.0f;
  std::memcpy(rows_bytes.data(), values.data(), rows_bytes.size());
  const std::string file = testing::recis_file({{"t.id/part_0_1", "I64", {rows}, ids},
                                                {"t.embedding/part_0_1", "F32", {rows, dim}, rows_bytes}});
  testing::TempDir dir;
  testing::write_file(dir.file("src"), file);
  int src = ::open(dir.file("src").c_str(), O_RDONLY);
  struct stat st {};
  ::fstat(src, &st);
  auto header = read_safetensors_header(src, static_cast<uint64_t>(st.st_size), "src");
  ASSERT_TRUE(header) << header.error().describe();
  RowTransformChain chain = quantizing(every_table(ServingDType::kInt8));
  auto embedding = chain.prepare({"t", "embedding", "t.embedding/part_0_1", "src"},
                                 RowLayout::of_tensor(DType::kF32, "F32", {rows, dim}));
  ASSERT_TRUE(embedding) << embedding.error().describe();
  const FileLayout plan = lay_out_filtered_file(header.value(), {true, true},
                                           {nullptr, std::make_shared<const SlotRows>(embedding.value())});
  ASSERT_EQ(plan.kept.size(), 2u);
  EXPECT_EQ(plan.kept[1].dtype_spelling, "U8");
  EXPECT_EQ(plan.kept[1].shape, (std::vector<uint64_t>{rows, dim + 8}));
  ASSERT_EQ(plan.ranges.size(), 2u);  // never merged with the copied id range
  ASSERT_TRUE(plan.ranges[1].rewrite != nullptr);

  for (CopyPath path : {CopyPath::kKernelWindows, CopyPath::kBuffered}) {
    int dst = ::open(dir.file("dst").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CopyEngine engine(4096, path, 0);
    auto outcome = engine.write(src, "src", dst, "dst", plan);
    ::close(dst);
    ASSERT_TRUE(outcome) << outcome.error().describe();
    const std::string out = testing::read_file(dir.file("dst"));
    ASSERT_EQ(out.size(), plan.output_bytes());
    const size_t data = plan.preamble.size();
    EXPECT_EQ(out.substr(data, ids.size()), ids);
    std::vector<unsigned char> want(dim + 8);
    for (uint64_t r = 0; r < rows; ++r) {
      ASSERT_EQ(encode_row(ServingDType::kInt8, values.data() + r * dim, dim, want.data()), EncodeVerdict::kOk);
      ASSERT_EQ(out.compare(data + ids.size() + r * (dim + 8), dim + 8,
                            std::string(want.begin(), want.end())), 0) << "row " << r;
    }
  }
  ::close(src);
}

}  // namespace
}  // namespace recis_convert
