// One embedding row into a serving dtype and back, bit for bit as Debian's PyTorch 1.13 (built without FBGEMM)
// does it, so that the exported bytes equal PyTorch's own and the measured error is what serving sees:
//   fp16   c10::Half(float): round to nearest even
//   bf16   c10::BFloat16(float): round to nearest even
//   int8   qembeddingbag_byte_prepack: bias = min, scale = (max - min) / 255, inverse scale 255 / (range + 1e-8),
//          code = lrintf((x - min) * inverse scale); decoded as code * scale + bias
//   int4/2 _qembeddingbag_nbit_prepack_helper: bias = half(min), scale = half((max - bias) / (2^bits - 1)) (1 if
//          the range is 0), code = clamp(lrintf((x - bias) / scale)); decoded as scale * code + bias
// All arithmetic in float32; this file is compiled without floating-point contraction (no fused multiply-add),
// as PyTorch's x86-64 build is.
#pragma once

#include <cstddef>
#include <cstdint>

#include "recis_convert/formats/safetensors.h"
#include "recis_convert/transforms/serving_dtype.h"

namespace recis_convert {

// Element types a row can be read from (converted to float32 first: exactly for F16 and BF16, rounded to nearest
// for F64).
bool can_quantize(DType dtype);
// Converts n elements of `dtype` (little-endian, as in the file) to float32.
void to_float32(DType dtype, const unsigned char* in, size_t n, float* out);

uint16_t float_to_half(float value);      // IEEE binary16 bits, round to nearest even; overflow is infinity
float half_to_float(uint16_t bits);       // exact
uint16_t float_to_bfloat16(float value);  // the upper half of the float32, rounded to nearest even
float bfloat16_to_float(uint16_t bits);   // exact

enum class EncodeVerdict {
  kOk,
  kNotFinite,   // the row holds a NaN or an infinity: it has no scale and no serving value
  kOutOfRange,  // a value (fp16, bf16) or the row's scale or bias (int4, int2: float16) would become infinite
};

// Encodes one row of `dim` float32 values into serving_row_width(dtype, dim) elements at `out` (dtype != kNone;
// dim as dim_problem allows). Nothing meaningful is written unless kOk.
EncodeVerdict encode_row(ServingDType dtype, const float* row, size_t dim, unsigned char* out);
// What PyTorch's unpack (or .float()) gives back for one encoded row.
void decode_row(ServingDType dtype, const unsigned char* in, size_t dim, float* out);

}  // namespace recis_convert
