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
#include "test_files.h"

namespace recis_convert {
namespace {

struct ScaleBias {
  float scale, bias;
};

ScaleBias scale_bias_of(const std::vector<unsigned char>& out, size_t dim) {
  ScaleBias sb;
  std::memcpy(&sb, out.data() + dim, sizeof sb);
  return sb;
}

TEST(QuantizeTest, RowWiseCodesScaleAndBias) {
  const float row[] = {-1.0f, 0.0f, 1.0f};
  std::vector<unsigned char> out(3 + 8);
  ASSERT_TRUE(quantize_row_int8(row, 3, out.data()));
  // inverse scale 255 / (2 + 1e-8) = 127.5 in float; 127.5 rounds to even: 128
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(out[1], 128);
  EXPECT_EQ(out[2], 255);
  EXPECT_EQ(scale_bias_of(out, 3).scale, 2.0f / 255.0f);
  EXPECT_EQ(scale_bias_of(out, 3).bias, -1.0f);
}

TEST(QuantizeTest, ConstantRowHasZeroScaleAndExactBias) {
  const float row[] = {0.25f, 0.25f};
  std::vector<unsigned char> out(2 + 8);
  ASSERT_TRUE(quantize_row_int8(row, 2, out.data()));
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(out[1], 0);
  EXPECT_EQ(scale_bias_of(out, 2).scale, 0.0f);
  EXPECT_EQ(scale_bias_of(out, 2).bias, 0.25f);
}

TEST(QuantizeTest, DequantizationErrorIsWithinHalfAStep) {
  std::vector<float> row(64);
  for (size_t i = 0; i < row.size(); ++i) row[i] = std::sin(static_cast<float>(i)) * 3.0f;
  std::vector<unsigned char> out(row.size() + 8);
  ASSERT_TRUE(quantize_row_int8(row.data(), row.size(), out.data()));
  const ScaleBias sb = scale_bias_of(out, row.size());
  for (size_t i = 0; i < row.size(); ++i) {
    EXPECT_LE(std::fabs(out[i] * sb.scale + sb.bias - row[i]), sb.scale * 0.5f + 1e-6f) << i;
  }
}

TEST(QuantizeTest, NonFiniteRowsAreRefused) {
  std::vector<unsigned char> out(2 + 8);
  const float nan_row[] = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  const float nan_first[] = {std::numeric_limits<float>::quiet_NaN(), 1.0f};
  const float inf_row[] = {1.0f, std::numeric_limits<float>::infinity()};
  EXPECT_FALSE(quantize_row_int8(nan_row, 2, out.data()));
  EXPECT_FALSE(quantize_row_int8(nan_first, 2, out.data()));
  EXPECT_FALSE(quantize_row_int8(inf_row, 2, out.data()));
}

TEST(QuantizeTest, ConvertsHalfBfloatAndDoubleExactly) {
  const unsigned char f16[] = {0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0x00, 0x7C};  // 1, -2, 2^-24, inf
  float out[4];
  to_float32(DType::kF16, f16, 4, out);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(out[3]));
  const unsigned char bf16[] = {0x80, 0x3F, 0x40, 0xC0};  // 1, -3
  to_float32(DType::kBF16, bf16, 2, out);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -3.0f);
  double d = 0.5;
  unsigned char f64[8];
  std::memcpy(f64, &d, 8);
  to_float32(DType::kF64, f64, 1, out);
  EXPECT_EQ(out[0], 0.5f);
  EXPECT_FALSE(can_quantize(DType::kI64));
  EXPECT_FALSE(can_quantize(DType::kU8));
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
  RowTransformChain chain;
  chain.add(std::make_unique<Int8RowwiseQuantizer>());
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

  for (CopyMethod method : {CopyMethod::kKernel, CopyMethod::kBuffered}) {
    int dst = ::open(dir.file("dst").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CopyEngine engine(4096, method);
    auto outcome = engine.write(src, "src", dst, "dst", plan);
    ::close(dst);
    ASSERT_TRUE(outcome) << outcome.error().describe();
    const std::string out = testing::read_file(dir.file("dst"));
    ASSERT_EQ(out.size(), plan.output_bytes());
    const size_t data = plan.preamble.size();
    EXPECT_EQ(out.substr(data, ids.size()), ids);
    std::vector<unsigned char> want(dim + 8);
    for (uint64_t r = 0; r < rows; ++r) {
      ASSERT_TRUE(quantize_row_int8(values.data() + r * dim, dim, want.data()));
      ASSERT_EQ(out.compare(data + ids.size() + r * (dim + 8), dim + 8,
                            std::string(want.begin(), want.end())), 0) << "row " << r;
    }
  }
  ::close(src);
}

}  // namespace
}  // namespace recis_convert
