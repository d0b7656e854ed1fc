#include "recis_convert/transforms/embedding_codecs.h"

#include <algorithm>
#include <cmath>
#include <cstring>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "scales and values are stored in host order");

namespace recis_convert {
namespace {

float from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint32_t bits_of(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

void store_u16(uint16_t v, unsigned char* out) { std::memcpy(out, &v, sizeof v); }
uint16_t load_u16(const unsigned char* in) {
  uint16_t v;
  std::memcpy(&v, in, sizeof v);
  return v;
}

bool all_finite(const float* row, size_t dim) {
  for (size_t i = 0; i < dim; ++i) {
    if (!std::isfinite(row[i])) return false;
  }
  return true;
}

EncodeVerdict encode_int8(const float* row, size_t dim, unsigned char* out) {
  constexpr float kEpsilon = 1e-8f;
  const float minimum = dim ? *std::min_element(row, row + dim) : 0.0f;
  const float maximum = dim ? *std::max_element(row, row + dim) : 0.0f;
  const float range = maximum - minimum;
  if (!std::isfinite(range)) return EncodeVerdict::kOutOfRange;  // e.g. -3e38 and 3e38 in one row
  const float inverse_scale = 255.0f / (range + kEpsilon);
  for (size_t i = 0; i < dim; ++i) {
    const long code = std::lrintf((row[i] - minimum) * inverse_scale);
    out[i] = static_cast<unsigned char>(std::clamp(code, 0L, 255L));
  }
  const float scale_bias[2] = {range / 255.0f, minimum};
  std::memcpy(out + dim, scale_bias, sizeof scale_bias);
  return EncodeVerdict::kOk;
}

EncodeVerdict encode_nbit(int bits, const float* row, size_t dim, unsigned char* out) {
  const int per_byte = 8 / bits;
  const int top_code = (1 << bits) - 1;
  const float maximum = dim ? *std::max_element(row, row + dim) : 0.0f;
  const uint16_t bias_half = float_to_half(dim ? *std::min_element(row, row + dim) : 0.0f);
  const float bias = half_to_float(bias_half);
  const float range = maximum - bias;
  uint16_t scale_half = float_to_half(range == 0 ? 1.0f : range / static_cast<float>(top_code));
  float scale = half_to_float(scale_half);
  float inverse_scale = scale == 0 ? 1.0f : 1.0f / scale;
  if (scale == 0 || std::isinf(inverse_scale)) {  // PyTorch's corner case: any scale works when all codes are 0
    scale_half = float_to_half(1.0f);
    inverse_scale = 1.0f;
  }
  // PyTorch would store an infinite scale or bias and serve garbage; this is refused instead (README).
  if (!std::isfinite(bias) || !std::isfinite(half_to_float(scale_half))) return EncodeVerdict::kOutOfRange;
  const size_t code_bytes = dim / static_cast<size_t>(per_byte);
  std::memset(out, 0, code_bytes);
  for (size_t i = 0; i < dim; ++i) {
    const long code = std::clamp(std::lrintf((row[i] - bias) * inverse_scale), 0L, static_cast<long>(top_code));
    out[i / per_byte] |= static_cast<unsigned char>(code << ((i % per_byte) * bits));
  }
  store_u16(scale_half, out + code_bytes);
  store_u16(bias_half, out + code_bytes + 2);
  return EncodeVerdict::kOk;
}

}  // namespace

bool can_quantize(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16 || dtype == DType::kF64;
}

void to_float32(DType dtype, const unsigned char* in, size_t n, float* out) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(out, in, n * sizeof(float));  // little-endian host (static_assert above)
      return;
    case DType::kF16:
      for (size_t i = 0; i < n; ++i) out[i] = half_to_float(load_u16(in + 2 * i));
      return;
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) out[i] = bfloat16_to_float(load_u16(in + 2 * i));
      return;
    case DType::kF64:
      for (size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, in + 8 * i, sizeof d);
        out[i] = static_cast<float>(d);
      }
      return;
    default:
      std::fill(out, out + n, 0.0f);  // callers check can_quantize first
  }
}

uint16_t float_to_half(float value) {
  const uint32_t bits = bits_of(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return sign | 0x7E00u;   // NaN
  if (magnitude >= 0x47800000u) return sign | 0x7C00u;  // >= 2^16 (or infinite): infinity
  const uint32_t exponent = magnitude >> 23;
  uint32_t mantissa = magnitude & 0x7FFFFFu;
  uint32_t half, rest, halfway;
  if (exponent >= 113) {  // >= 2^-14: a normal half; 13 mantissa bits go
    half = (exponent - 112) << 10 | mantissa >> 13;
    rest = mantissa & 0x1FFFu;
    halfway = 0x1000u;
  } else {                // a subnormal half counts units of 2^-24
    if (exponent < 102) return sign;  // below 2^-25: rounds to zero
    mantissa |= 0x800000u;
    const uint32_t shift = 126 - exponent;  // 14..24
    half = mantissa >> shift;
    rest = mantissa & ((1u << shift) - 1);
    halfway = 1u << (shift - 1);
  }
  if (rest > halfway || (rest == halfway && (half & 1u))) ++half;  // a carry moves into the exponent, as it should
  return static_cast<uint16_t>(sign | half);
}

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1Fu;
  uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0x1F) return from_bits(sign | 0x7F800000u | (mantissa << 13));  // inf / nan
  if (exponent == 0) {
    if (mantissa == 0) return from_bits(sign);  // +-0
    exponent = 127 - 15 + 1;                    // a subnormal half is a normal float: normalise
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    mantissa &= 0x3FFu;
    return from_bits(sign | (exponent << 23) | (mantissa << 13));
  }
  return from_bits(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
}

uint16_t float_to_bfloat16(float value) {
  if (std::isnan(value)) return 0x7FC0u;
  const uint32_t bits = bits_of(value);
  return static_cast<uint16_t>((bits + ((bits >> 16) & 1u) + 0x7FFFu) >> 16);
}

float bfloat16_to_float(uint16_t bits) { return from_bits(static_cast<uint32_t>(bits) << 16); }

EncodeVerdict encode_row(ServingDType dtype, const float* row, size_t dim, unsigned char* out) {
  if (!all_finite(row, dim)) return EncodeVerdict::kNotFinite;
  switch (dtype) {
    case ServingDType::kFp16:
      for (size_t i = 0; i < dim; ++i) {
        const uint16_t h = float_to_half(row[i]);
        if ((h & 0x7FFFu) == 0x7C00u) return EncodeVerdict::kOutOfRange;
        store_u16(h, out + 2 * i);
      }
      return EncodeVerdict::kOk;
    case ServingDType::kBf16:
      for (size_t i = 0; i < dim; ++i) {
        const uint16_t b = float_to_bfloat16(row[i]);
        if ((b & 0x7FFFu) == 0x7F80u) return EncodeVerdict::kOutOfRange;
        store_u16(b, out + 2 * i);
      }
      return EncodeVerdict::kOk;
    case ServingDType::kInt8: return encode_int8(row, dim, out);
    case ServingDType::kInt4: return encode_nbit(4, row, dim, out);
    case ServingDType::kInt2: return encode_nbit(2, row, dim, out);
    case ServingDType::kNone: break;
  }
  std::memcpy(out, row, dim * sizeof(float));
  return EncodeVerdict::kOk;
}

void decode_row(ServingDType dtype, const unsigned char* in, size_t dim, float* out) {
  switch (dtype) {
    case ServingDType::kFp16:
      to_float32(DType::kF16, in, dim, out);
      return;
    case ServingDType::kBf16:
      to_float32(DType::kBF16, in, dim, out);
      return;
    case ServingDType::kInt8: {
      float scale_bias[2];
      std::memcpy(scale_bias, in + dim, sizeof scale_bias);
      for (size_t i = 0; i < dim; ++i) out[i] = static_cast<float>(in[i]) * scale_bias[0] + scale_bias[1];
      return;
    }
    case ServingDType::kInt4:
    case ServingDType::kInt2: {
      const int bits = dtype == ServingDType::kInt4 ? 4 : 2;
      const size_t per_byte = static_cast<size_t>(8 / bits);
      const size_t code_bytes = dim / per_byte;
      const float scale = half_to_float(load_u16(in + code_bytes));
      const float bias = half_to_float(load_u16(in + code_bytes + 2));
      for (size_t i = 0; i < dim; ++i) {
        const unsigned code = (in[i / per_byte] >> ((i % per_byte) * static_cast<size_t>(bits))) & ((1u << bits) - 1);
        out[i] = scale * static_cast<float>(code) + bias;
      }
      return;
    }
    case ServingDType::kNone:
      to_float32(DType::kF32, in, dim, out);
      return;
  }
}

}  // namespace recis_convert
