#include "recis_convert/transforms/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "scale and bias are written in host order");

namespace recis_convert {
namespace {

float from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// IEEE 754 half to float, exact (every half is a float).
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1Fu;
  uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0x1F) return from_bits(sign | 0x7F800000u | (mantissa << 13));  // inf / nan
  if (exponent == 0) {
    if (mantissa == 0) return from_bits(sign);  // +-0
    // subnormal half: normalise
    exponent = 127 - 15 + 1;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    mantissa &= 0x3FFu;
    return from_bits(sign | (exponent << 23) | (mantissa << 13));
  }
  return from_bits(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
}

}  // namespace

bool can_quantize(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16 || dtype == DType::kF64;
}

void to_float32(DType dtype, const unsigned char* in, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) {
    switch (dtype) {
      case DType::kF32: {
        uint32_t bits = static_cast<uint32_t>(in[4 * i]) | static_cast<uint32_t>(in[4 * i + 1]) << 8 |
                        static_cast<uint32_t>(in[4 * i + 2]) << 16 | static_cast<uint32_t>(in[4 * i + 3]) << 24;
        out[i] = from_bits(bits);
        break;
      }
      case DType::kF16:
        out[i] = half_to_float(static_cast<uint16_t>(in[2 * i] | in[2 * i + 1] << 8));
        break;
      case DType::kBF16:
        out[i] = from_bits(static_cast<uint32_t>(in[2 * i] | in[2 * i + 1] << 8) << 16);
        break;
      case DType::kF64: {
        uint64_t bits = 0;
        for (int b = 7; b >= 0; --b) bits = bits << 8 | in[8 * i + static_cast<size_t>(b)];
        double d;
        std::memcpy(&d, &bits, sizeof d);
        out[i] = static_cast<float>(d);
        break;
      }
      default:
        out[i] = 0;  // callers check can_quantize first
    }
  }
}

bool quantize_row_int8(const float* row, size_t dim, unsigned char* out) {
  constexpr float kEpsilon = 1e-8f;
  float minimum = 0, maximum = 0;
  if (dim > 0) {
    minimum = *std::min_element(row, row + dim);
    maximum = *std::max_element(row, row + dim);
  }
  if (!std::isfinite(minimum) || !std::isfinite(maximum)) return false;
  for (size_t i = 0; i < dim; ++i) {
    if (std::isnan(row[i])) return false;  // min/max skip NaN comparisons
  }
  const float range = maximum - minimum;
  const float scale = range / 255.0f;
  const float inverse_scale = 255.0f / (range + kEpsilon);
  for (size_t i = 0; i < dim; ++i) {
    const long code = std::lrintf((row[i] - minimum) * inverse_scale);
    out[i] = static_cast<unsigned char>(std::clamp(code, 0L, 255L));
  }
  float scale_bias[2] = {scale, minimum};
  std::memcpy(out + dim, scale_bias, sizeof scale_bias);  // host order = little-endian (static_assert above)
  return true;
}

Result<RowLayout> Int8RowwiseQuantizer::rewritten_layout(const SlotRef& slot, const RowLayout& in) const {
  if (in.row_shape.size() != 1 || !can_quantize(in.dtype) || !in.encoding.empty()) {
    return bad_input(slot.file, "embedding tensor " + nlohmann::json(slot.tensor).dump() + " (" + in.dtype_spelling +
                                    ", " + std::to_string(in.row_shape.size() + 1) +
                                    "-D) cannot be quantized: int8 needs 2-D F32, F16, BF16 or F64 rows");
  }
  RowLayout out;
  out.dtype = DType::kU8;
  out.dtype_spelling = "U8";
  out.row_shape = {in.row_shape[0] + kInt8RowwiseExtraBytes};
  out.encoding = "int8_rowwise";
  return out;
}

Status Int8RowwiseQuantizer::rewrite(const SlotRef& slot, const RowLayout& from, const RowLayout& to,
                                     const unsigned char* in, uint64_t rows, uint64_t first_row,
                                     unsigned char* out) const {
  const uint64_t dim = from.row_shape[0];
  const uint64_t in_row = from.row_bytes(), out_row = to.row_bytes();
  std::vector<float> row(dim);
  for (uint64_t r = 0; r < rows; ++r) {
    to_float32(from.dtype, in + r * in_row, dim, row.data());
    if (!quantize_row_int8(row.data(), dim, out + r * out_row)) {
      return bad_input(slot.file, "tensor \"" + slot.tensor + "\" row " + std::to_string(first_row + r) +
                                      " holds a NaN or infinite value: it cannot be quantized");
    }
  }
  return Ok{};
}

}  // namespace recis_convert
