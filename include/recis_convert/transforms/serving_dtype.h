// The dtypes serving keeps embeddings in (--quantize-embeddings, --quantize-table), and what one row of `dim`
// values looks like in each. The byte layouts are PyTorch's, so its serving ops read the exported rows directly:
//   fp16  F16 [dim]               x.float().half()
//   bf16  BF16 [dim]              x.float().bfloat16()
//   int8  U8 [dim + 8]            quantized::embedding_bag_byte_prepack: codes, float32 scale, float32 bias
//   int4  U8 [dim / 2 + 4]        quantized::embedding_bag_4bit_prepack: two codes a byte (low nibble first),
//                                 float16 scale, float16 bias
//   int2  U8 [dim / 4 + 4]        quantized::embedding_bag_2bit_prepack: four codes a byte, float16 scale and bias
// The arithmetic of each is in embedding_codecs.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "recis_convert/formats/safetensors.h"

namespace recis_convert {

enum class ServingDType { kNone, kFp16, kBf16, kInt8, kInt4, kInt2 };

// The option's spelling: none, fp16, bf16, int8, int4, int2.
std::string option_name(ServingDType dtype);
std::optional<ServingDType> parse_serving_dtype(const std::string& name);  // case-insensitive
// The name in manifest.json, the run record and HDF5's `quantization` attribute: fp16, bf16, int8_rowwise,
// int4_rowwise, int2_rowwise ("" for none).
std::string quantization_name(ServingDType dtype);

// The stored element type and the bytes of one row of `dim` values.
DType stored_dtype(ServingDType dtype);
uint64_t serving_row_width(ServingDType dtype, uint64_t dim);  // elements of the stored dtype per row
// The original dim from a stored row's width (the inverse of serving_row_width).
uint64_t original_dim(ServingDType dtype, uint64_t stored_width);
// Why `dim` cannot be stored in this dtype ("int4 needs an even dim", as PyTorch's prepack), or nullopt.
std::optional<std::string> dim_problem(ServingDType dtype, uint64_t dim);

// Each table's serving dtype: a default and per-table overrides (which may be kNone).
struct EmbeddingDTypes {
  ServingDType all = ServingDType::kNone;
  std::map<std::string, ServingDType> tables;

  ServingDType of(const std::string& table) const;
  bool any() const;  // whether any table is converted
};

}  // namespace recis_convert
