// --quantize-embeddings int8: row-wise 8-bit quantization of the `embedding` slot, in the layout of PyTorch's
// quantized::embedding_bag_byte_prepack (fbgemm's "fused 8-bit rowwise"), so that
// torch.ops.quantized.embedding_bag_byte_rowwise_offsets can serve the exported table directly. Each row of dim
// values becomes dim uint8 codes followed by a float32 scale and a float32 bias (little-endian), and
//   value ~= code * scale + bias,  bias = min(row),  scale = (max(row) - min(row)) / 255.
// The arithmetic is fbgemm's reference (FloatToFused8BitRowwiseQuantizedSBFloat): inverse scale
// 255 / (range + 1e-8), codes rounded with lrintf (to nearest, ties to even), all in float32.
#pragma once

#include <cstddef>
#include <cstdint>

#include "recis_convert/formats/safetensors.h"
#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

inline constexpr uint64_t kInt8RowwiseExtraBytes = 2 * sizeof(float);  // scale and bias after the codes

// Element types the quantizer reads (converted to float32 first, exactly for F16 and BF16).
bool can_quantize(DType dtype);

// Converts n elements of `dtype` (little-endian, as in the file) to float32.
void to_float32(DType dtype, const unsigned char* in, size_t n, float* out);

// Quantizes one row of `dim` floats into dim + 8 bytes. False (nothing meaningful written) if a value is not
// finite: such a row has no scale.
bool quantize_row_int8(const float* row, size_t dim, unsigned char* out);

// The row transform: every `embedding` slot's rows [dim] of F32, F16, BF16 or F64 become U8 rows [dim + 8] with
// encoding "int8_rowwise". Another embedding layout is bad input; other slots pass unchanged.
class Int8RowwiseQuantizer : public RowTransform {
 public:
  bool is_identity() const override { return false; }
  bool rewrites(const SlotRef& slot) const override { return slot.slot == "embedding"; }
  Result<RowLayout> rewritten_layout(const SlotRef& slot, const RowLayout& in) const override;
  Status rewrite(const SlotRef& slot, const RowLayout& from, const RowLayout& to, const unsigned char* in,
                 uint64_t rows, uint64_t first_row, unsigned char* out) const override;
};

}  // namespace recis_convert
