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

// The conversions are inline and free of branches where it matters, so the row loops below vectorize.

// Float arithmetic does the rounding: scaling |x| by 2^112 then 2^-110 turns values beyond the half range into
// infinity; adding a power of two just large enough makes the float adder round the mantissa to the 10 (or, for
// subnormal halves, fewer) bits a half keeps, to nearest even. The method of Maratyszcza's FP16 library, which
// c10::Half uses, so the bits are PyTorch's (and the unit test checks them against a bit-by-bit transcription).
inline uint16_t half_of(float value) {
  float base = (std::fabs(value) * 0x1.0p+112f) * 0x1.0p-110f;
  const uint32_t w = bits_of(value);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t exponent = shl1_w & 0xFF000000u;
  const uint32_t low = 0u - static_cast<uint32_t>(exponent < 0x71000000u);  // masks, not branches
  const uint32_t bias = (0x71000000u & low) | (exponent & ~low);
  base = from_bits((bias >> 1) + 0x07800000u) + base;
  const uint32_t rounded = bits_of(base);
  const uint32_t nonsign = ((rounded >> 13) & 0x00007C00u) + (rounded & 0x00000FFFu);
  const uint32_t nan = 0u - static_cast<uint32_t>(shl1_w > 0xFF000000u);
  return static_cast<uint16_t>((sign >> 16) | (0x7E00u & nan) | (nonsign & ~nan));
}

// The inverse, exact: a normal half is rescaled by float multiplication (which also carries infinity and NaN
// over); a subnormal one is its mantissa placed in a float of exponent -1, minus 0.5.
inline float float_of_half(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const float normalized = from_bits((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float denormalized = from_bits((two_w >> 17) | (126u << 23)) - 0.5f;
  const uint32_t subnormal = 0u - static_cast<uint32_t>(two_w < (1u << 27));  // all ones or zero: no branch
  return from_bits(sign | (bits_of(denormalized) & subnormal) | (bits_of(normalized) & ~subnormal));
}

inline uint16_t bfloat16_of(float value) {
  const uint32_t bits = bits_of(value);
  const uint16_t rounded = static_cast<uint16_t>((bits + ((bits >> 16) & 1u) + 0x7FFFu) >> 16);
  return std::isnan(value) ? uint16_t{0x7FC0u} : rounded;
}

inline float float_of_bfloat16(uint16_t bits) { return from_bits(static_cast<uint32_t>(bits) << 16); }

// The row's smallest and largest value, the first of equals as std::min_element / std::max_element pick them
// (PyTorch's choice; it matters for -0.0 against 0.0), in one pass.
struct MinMax {
  float min = 0, max = 0;
};
MinMax min_max(const float* row, size_t dim) {
  if (dim == 0) return {};
  MinMax m{row[0], row[0]};
  for (size_t i = 1; i < dim; ++i) {
    m.min = row[i] < m.min ? row[i] : m.min;
    m.max = m.max < row[i] ? row[i] : m.max;
  }
  return m;
}

// lrintf: to nearest, ties to even, in the default rounding mode, as PyTorch rounds. The values are codes within
// [0, 255] or a little outside, so an int holds them. GCC's int-returning builtin vectorizes (cvtps2dq), about 20%
// faster than lrintf's long on this loop; clang has no such builtin, so it gets lrintf.
#if defined(__has_builtin)
#if __has_builtin(__builtin_irintf)
#define RECIS_HAS_IRINTF 1
#endif
#endif
inline int round_to_int(float v) {
#ifdef RECIS_HAS_IRINTF
  return __builtin_irintf(v);
#else
  return static_cast<int>(std::lrintf(v));
#endif
}

bool all_finite(const float* row, size_t dim) {
  bool finite = true;
  for (size_t i = 0; i < dim; ++i) finite &= std::isfinite(row[i]);
  return finite;
}

// fp16 or bf16: `convert` each value; a finite value that comes out as `infinity` is beyond the dtype's range.
template <typename Convert>
EncodeVerdict encode_16bit(Convert convert, uint16_t infinity, const float* row, size_t dim, unsigned char* out) {
  constexpr size_t kBlock = 64;  // converted into an aligned array, then copied out: the loop vectorizes
  uint16_t values[kBlock];
  unsigned overflow = 0;
  for (size_t start = 0; start < dim; start += kBlock) {
    const size_t n = std::min(kBlock, dim - start);
    for (size_t i = 0; i < n; ++i) values[i] = convert(row[start + i]);
    for (size_t i = 0; i < n; ++i) overflow |= (values[i] & 0x7FFFu) == infinity;
    std::memcpy(out + 2 * start, values, 2 * n);
  }
  return overflow ? EncodeVerdict::kOutOfRange : EncodeVerdict::kOk;
}

EncodeVerdict encode_int8(const float* row, size_t dim, unsigned char* out) {
  constexpr float kEpsilon = 1e-8f;
  const MinMax m = min_max(row, dim);
  const float minimum = m.min;
  const float range = m.max - minimum;
  if (!std::isfinite(range)) return EncodeVerdict::kOutOfRange;  // e.g. -3e38 and 3e38 in one row
  const float inverse_scale = 255.0f / (range + kEpsilon);
  for (size_t i = 0; i < dim; ++i) {
    out[i] = static_cast<unsigned char>(std::clamp(round_to_int((row[i] - minimum) * inverse_scale), 0, 255));
  }
  const float scale_bias[2] = {range / 255.0f, minimum};
  std::memcpy(out + dim, scale_bias, sizeof scale_bias);
  return EncodeVerdict::kOk;
}

EncodeVerdict encode_nbit(int bits, const float* row, size_t dim, unsigned char* out) {
  const int per_byte = 8 / bits;
  const int top_code = (1 << bits) - 1;
  const MinMax m = min_max(row, dim);
  const uint16_t bias_half = half_of(m.min);
  const float bias = float_of_half(bias_half);
  const float range = m.max - bias;
  uint16_t scale_half = half_of(range == 0 ? 1.0f : range / static_cast<float>(top_code));
  const float scale = float_of_half(scale_half);
  float inverse_scale = scale == 0 ? 1.0f : 1.0f / scale;
  if (scale == 0 || std::isinf(inverse_scale)) {  // PyTorch's corner case: any scale works when all codes are 0
    scale_half = half_of(1.0f);
    inverse_scale = 1.0f;
  }
  // PyTorch would store an infinite scale or bias and serve garbage; this is refused instead (README).
  if (!std::isfinite(bias) || !std::isfinite(float_of_half(scale_half))) return EncodeVerdict::kOutOfRange;
  const size_t code_bytes = dim / static_cast<size_t>(per_byte);
  constexpr size_t kBlock = 64;  // codes of a block of values first (a loop that vectorizes), then packed
  int codes[kBlock];
  for (size_t start = 0; start < dim; start += kBlock) {
    const size_t n = std::min(kBlock, dim - start);
    for (size_t i = 0; i < n; ++i) {
      codes[i] = std::clamp(round_to_int((row[start + i] - bias) * inverse_scale), 0, top_code);
    }
    for (size_t i = 0; i < n; i += static_cast<size_t>(per_byte)) {  // the first code in the lowest bits
      unsigned packed = 0;
      for (int k = 0; k < per_byte; ++k) packed |= static_cast<unsigned>(codes[i + static_cast<size_t>(k)]) << (k * bits);
      out[(start + i) / static_cast<size_t>(per_byte)] = static_cast<unsigned char>(packed);
    }
  }
  store_u16(scale_half, out + code_bytes);
  store_u16(bias_half, out + code_bytes + 2);
  return EncodeVerdict::kOk;
}

// PyTorch's nbit unpack: scale * code + bias, the codes of a byte from its lowest bits up. A template on the bit
// width, so the loop over a byte's codes unrolls and the rows vectorize.
template <int kBits>
void decode_nbit(const unsigned char* in, size_t dim, float* out) {
  constexpr size_t kPerByte = 8 / kBits;
  const size_t code_bytes = dim / kPerByte;
  const float scale = float_of_half(load_u16(in + code_bytes));
  const float bias = float_of_half(load_u16(in + code_bytes + 2));
  for (size_t b = 0; b < code_bytes; ++b) {
    for (size_t k = 0; k < kPerByte; ++k) {
      const unsigned code = (in[b] >> (k * kBits)) & ((1u << kBits) - 1);
      out[b * kPerByte + k] = scale * static_cast<float>(code) + bias;
    }
  }
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
      for (size_t i = 0; i < n; ++i) out[i] = float_of_half(load_u16(in + 2 * i));
      return;
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) out[i] = float_of_bfloat16(load_u16(in + 2 * i));
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

uint16_t float_to_half(float value) { return half_of(value); }
float half_to_float(uint16_t bits) { return float_of_half(bits); }
uint16_t float_to_bfloat16(float value) { return bfloat16_of(value); }
float bfloat16_to_float(uint16_t bits) { return float_of_bfloat16(bits); }

EncodeVerdict encode_row(ServingDType dtype, const float* row, size_t dim, unsigned char* out) {
  if (!all_finite(row, dim)) return EncodeVerdict::kNotFinite;
  switch (dtype) {
    case ServingDType::kFp16: return encode_16bit([](float v) { return half_of(v); }, 0x7C00u, row, dim, out);
    case ServingDType::kBf16: return encode_16bit([](float v) { return bfloat16_of(v); }, 0x7F80u, row, dim, out);
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
    case ServingDType::kInt4: return decode_nbit<4>(in, dim, out);
    case ServingDType::kInt2: return decode_nbit<2>(in, dim, out);
    case ServingDType::kNone:
      to_float32(DType::kF32, in, dim, out);
      return;
  }
}

}  // namespace recis_convert
