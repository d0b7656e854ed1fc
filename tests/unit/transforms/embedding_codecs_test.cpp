#include "recis_convert/transforms/embedding_codecs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace recis_convert {
namespace {

std::vector<unsigned char> encoded(ServingDType dtype, const std::vector<float>& row) {
  std::vector<unsigned char> out(serving_row_width(dtype, row.size()) * dtype_bits(stored_dtype(dtype)) / 8);
  EXPECT_EQ(encode_row(dtype, row.data(), row.size(), out.data()), EncodeVerdict::kOk);
  return out;
}

template <typename T>
T at(const std::vector<unsigned char>& bytes, size_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}

TEST(EmbeddingCodecsTest, Int8CodesScaleAndBias) {
  const auto out = encoded(ServingDType::kInt8, {-1.0f, 0.0f, 1.0f});
  // inverse scale 255 / (2 + 1e-8) = 127.5 in float; 127.5 rounds to even: 128
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(out[1], 128);
  EXPECT_EQ(out[2], 255);
  EXPECT_EQ(at<float>(out, 3), 2.0f / 255.0f);
  EXPECT_EQ(at<float>(out, 7), -1.0f);
  const auto constant = encoded(ServingDType::kInt8, {0.25f, 0.25f});
  EXPECT_EQ(constant[0], 0);
  EXPECT_EQ(at<float>(constant, 2), 0.0f);
  EXPECT_EQ(at<float>(constant, 6), 0.25f);
}

TEST(EmbeddingCodecsTest, Int4PacksTwoCodesAByteLowNibbleFirstWithHalfScaleAndBias) {
  // bias half(0) = 0, scale half(3 / 15) = 0x3266 (0.199951171875), inverse 5.0012207
  const auto out = encoded(ServingDType::kInt4, {0.0f, 1.5f, 3.0f, 0.75f});
  ASSERT_EQ(out.size(), 2u + 4u);
  EXPECT_EQ(out[0], 0x80);  // codes 0, 8
  EXPECT_EQ(out[1], 0x4F);  // codes 15, 4
  EXPECT_EQ(at<uint16_t>(out, 2), 0x3266);
  EXPECT_EQ(at<uint16_t>(out, 4), 0x0000);
  float back[4];
  decode_row(ServingDType::kInt4, out.data(), 4, back);
  EXPECT_EQ(back[1], 0.199951171875f * 8);
}

TEST(EmbeddingCodecsTest, Int2PacksFourCodesAByte) {
  const auto out = encoded(ServingDType::kInt2, {-1.0f, 0.0f, 1.0f, 2.0f});
  ASSERT_EQ(out.size(), 1u + 4u);
  EXPECT_EQ(out[0], 0xE4);                    // codes 0, 1, 2, 3 from the low bits up
  EXPECT_EQ(at<uint16_t>(out, 1), 0x3C00);  // scale 1
  EXPECT_EQ(at<uint16_t>(out, 3), 0xBC00);  // bias -1
  float back[4];
  decode_row(ServingDType::kInt2, out.data(), 4, back);
  EXPECT_EQ(std::vector<float>(back, back + 4), (std::vector<float>{-1.0f, 0.0f, 1.0f, 2.0f}));
  // a constant row: scale 1 (PyTorch's corner case), every code 0
  const auto constant = encoded(ServingDType::kInt2, {0.5f, 0.5f, 0.5f, 0.5f});
  EXPECT_EQ(constant[0], 0);
  EXPECT_EQ(at<uint16_t>(constant, 1), 0x3C00);
}

TEST(EmbeddingCodecsTest, HalfRoundsToNearestEvenAndOverflowsToInfinity) {
  EXPECT_EQ(float_to_half(1.0f), 0x3C00);
  EXPECT_EQ(float_to_half(-2.0f), 0xC000);
  EXPECT_EQ(float_to_half(0.1f), 0x2E66);
  EXPECT_EQ(float_to_half(65504.0f), 0x7BFF);
  EXPECT_EQ(float_to_half(65519.0f), 0x7BFF);
  EXPECT_EQ(float_to_half(65520.0f), 0x7C00);  // the tie above the largest half goes to infinity (even)
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie: to the even 1
  EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie: to the even 2 ulps
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);             // smallest subnormal
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);             // its half: ties to even zero
  EXPECT_EQ(float_to_half(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(float_to_half(std::ldexp(1023.5f, -24)), 0x0400);          // rounds up into the normals
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  for (uint32_t h = 0; h < 0x10000; ++h) {  // every half survives the trip through float
    const uint16_t bits = static_cast<uint16_t>(h);
    if ((bits & 0x7C00) == 0x7C00 && (bits & 0x03FF) != 0) continue;  // NaNs
    ASSERT_EQ(float_to_half(half_to_float(bits)), bits) << h;
  }
}

// IEEE round-to-nearest-even to binary16, transcribed bit by bit: the reference for the fast float_to_half.
uint16_t reference_half(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return sign | 0x7E00u;   // NaN
  if (magnitude >= 0x47800000u) return sign | 0x7C00u;  // >= 2^16: infinity
  const uint32_t exponent = magnitude >> 23;
  uint32_t mantissa = magnitude & 0x7FFFFFu, half, rest, halfway;
  if (exponent >= 113) {  // a normal half: 13 mantissa bits go
    half = (exponent - 112) << 10 | mantissa >> 13;
    rest = mantissa & 0x1FFFu;
    halfway = 0x1000u;
  } else {  // a subnormal half counts units of 2^-24
    if (exponent < 102) return sign;
    mantissa |= 0x800000u;
    const uint32_t shift = 126 - exponent;
    half = mantissa >> shift;
    rest = mantissa & ((1u << shift) - 1);
    halfway = 1u << (shift - 1);
  }
  if (rest > halfway || (rest == halfway && (half & 1u))) ++half;
  return static_cast<uint16_t>(sign | half);
}

TEST(EmbeddingCodecsTest, HalfAgreesWithTheBitByBitReference) {
  std::mt19937 rng(11);
  auto check = [](uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    ASSERT_EQ(float_to_half(f), reference_half(f)) << std::hex << bits;
  };
  for (int i = 0; i < (1 << 22); ++i) check(rng());
  // every float from 2^-26 to 2^17 at the bits where rounding decides: around each half's halfway points
  for (uint32_t e = 100; e <= 144; ++e) {
    for (uint32_t m = 0; m < (1u << 23); m += 0xFFF) {
      for (uint32_t d : {0u, 1u, 0xFFFu, 0x1000u, 0x1001u}) check((e << 23) | ((m + d) & 0x7FFFFFu));
    }
  }
}

TEST(EmbeddingCodecsTest, BfloatRoundsToNearestEven) {
  auto from_bits = [](uint32_t b) {
    float f;
    std::memcpy(&f, &b, sizeof f);
    return f;
  };
  EXPECT_EQ(float_to_bfloat16(1.0f), 0x3F80);
  EXPECT_EQ(float_to_bfloat16(from_bits(0x3F808000u)), 0x3F80);  // tie: even
  EXPECT_EQ(float_to_bfloat16(from_bits(0x3F818000u)), 0x3F82);  // tie: even
  EXPECT_EQ(float_to_bfloat16(from_bits(0x3F808001u)), 0x3F81);
  EXPECT_EQ(bfloat16_to_float(0xC040), -3.0f);
}

TEST(EmbeddingCodecsTest, ValuesADtypeCannotHoldAreRefused) {
  std::vector<unsigned char> out(64);
  const float big[] = {70000.0f, 0, 0, 0};
  EXPECT_EQ(encode_row(ServingDType::kFp16, big, 4, out.data()), EncodeVerdict::kOutOfRange);
  EXPECT_EQ(encode_row(ServingDType::kBf16, big, 4, out.data()), EncodeVerdict::kOk);
  const float huge[] = {std::numeric_limits<float>::max(), 0, 0, 0};
  EXPECT_EQ(encode_row(ServingDType::kBf16, huge, 4, out.data()), EncodeVerdict::kOutOfRange);
  const float wide[] = {-3e38f, 3e38f, 0, 0};
  EXPECT_EQ(encode_row(ServingDType::kInt8, wide, 4, out.data()), EncodeVerdict::kOutOfRange);
  EXPECT_EQ(encode_row(ServingDType::kInt4, big, 4, out.data()), EncodeVerdict::kOk);  // scale 4667 is a half
  const float span[] = {0, 1e6f, 0, 0};  // scale 66667 is not
  EXPECT_EQ(encode_row(ServingDType::kInt4, span, 4, out.data()), EncodeVerdict::kOutOfRange);
  const float low_bias[] = {-70000.0f, 0, 0, 0};
  EXPECT_EQ(encode_row(ServingDType::kInt2, low_bias, 4, out.data()), EncodeVerdict::kOutOfRange);
  const float nan_row[] = {1.0f, std::numeric_limits<float>::quiet_NaN(), 0, 0};
  const float inf_row[] = {std::numeric_limits<float>::infinity(), 1.0f, 0, 0};
  for (ServingDType d : {ServingDType::kFp16, ServingDType::kBf16, ServingDType::kInt8, ServingDType::kInt4,
                         ServingDType::kInt2}) {
    EXPECT_EQ(encode_row(d, nan_row, 4, out.data()), EncodeVerdict::kNotFinite) << option_name(d);
    EXPECT_EQ(encode_row(d, inf_row, 4, out.data()), EncodeVerdict::kNotFinite) << option_name(d);
  }
}

TEST(EmbeddingCodecsTest, DecodedRowsAreWithinHalfAStep) {
  std::vector<float> row(64);
  for (size_t i = 0; i < row.size(); ++i) row[i] = std::sin(static_cast<float>(i)) * 3.0f;
  std::vector<float> back(row.size());
  for (auto [dtype, steps] : {std::pair{ServingDType::kInt8, 255.0f}, std::pair{ServingDType::kInt4, 15.0f},
                              std::pair{ServingDType::kInt2, 3.0f}}) {
    const auto out = encoded(dtype, row);
    decode_row(dtype, out.data(), row.size(), back.data());
    const float step = 6.0f / steps;  // the row spans about [-3, 3]
    for (size_t i = 0; i < row.size(); ++i) EXPECT_LE(std::fabs(back[i] - row[i]), step * 0.51f) << i;
  }
  const auto half = encoded(ServingDType::kFp16, row);
  decode_row(ServingDType::kFp16, half.data(), row.size(), back.data());
  for (size_t i = 0; i < row.size(); ++i) EXPECT_LE(std::fabs(back[i] - row[i]), std::ldexp(1.0f, -10)) << i;
}

TEST(EmbeddingCodecsTest, ConvertsHalfBfloatAndDoubleExactly) {
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

}  // namespace
}  // namespace recis_convert
