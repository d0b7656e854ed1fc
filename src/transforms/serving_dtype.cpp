#include "recis_convert/transforms/serving_dtype.h"

#include <algorithm>
#include <cctype>

namespace recis_convert {
namespace {

struct Spelling {
  ServingDType dtype;
  const char* option;
  const char* quantization;
};
constexpr Spelling kSpellings[] = {
    {ServingDType::kNone, "none", ""},          {ServingDType::kFp16, "fp16", "fp16"},
    {ServingDType::kBf16, "bf16", "bf16"},      {ServingDType::kInt8, "int8", "int8_rowwise"},
    {ServingDType::kInt4, "int4", "int4_rowwise"}, {ServingDType::kInt2, "int2", "int2_rowwise"},
};

const Spelling& spelling(ServingDType dtype) {
  for (const auto& s : kSpellings) {
    if (s.dtype == dtype) return s;
  }
  return kSpellings[0];
}

// Codes per byte of int4 and int2; the float16 scale and bias after them.
uint64_t codes_per_byte(ServingDType dtype) { return dtype == ServingDType::kInt4 ? 2 : 4; }
constexpr uint64_t kHalfScaleBiasBytes = 4;
constexpr uint64_t kFloatScaleBiasBytes = 8;

}  // namespace

std::string option_name(ServingDType dtype) { return spelling(dtype).option; }
std::string quantization_name(ServingDType dtype) { return spelling(dtype).quantization; }

std::optional<ServingDType> parse_serving_dtype(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const auto& s : kSpellings) {
    if (lower == s.option) return s.dtype;
  }
  return std::nullopt;
}

DType stored_dtype(ServingDType dtype) {
  switch (dtype) {
    case ServingDType::kFp16: return DType::kF16;
    case ServingDType::kBf16: return DType::kBF16;
    case ServingDType::kNone: return DType::kF32;
    default: return DType::kU8;
  }
}

uint64_t serving_row_width(ServingDType dtype, uint64_t dim) {
  switch (dtype) {
    case ServingDType::kInt8: return dim + kFloatScaleBiasBytes;
    case ServingDType::kInt4:
    case ServingDType::kInt2: return dim / codes_per_byte(dtype) + kHalfScaleBiasBytes;
    default: return dim;
  }
}

uint64_t original_dim(ServingDType dtype, uint64_t stored_width) {
  switch (dtype) {
    case ServingDType::kInt8: return stored_width >= kFloatScaleBiasBytes ? stored_width - kFloatScaleBiasBytes : 0;
    case ServingDType::kInt4:
    case ServingDType::kInt2:
      return stored_width >= kHalfScaleBiasBytes ? (stored_width - kHalfScaleBiasBytes) * codes_per_byte(dtype) : 0;
    default: return stored_width;
  }
}

std::optional<std::string> dim_problem(ServingDType dtype, uint64_t dim) {
  if (dtype == ServingDType::kInt4 && dim % 2 != 0) return std::string("int4 needs an even dim");
  if (dtype == ServingDType::kInt2 && dim % 4 != 0) return std::string("int2 needs a dim divisible by 4");
  return std::nullopt;
}

ServingDType EmbeddingDTypes::of(const std::string& table) const {
  auto it = tables.find(table);
  return it == tables.end() ? all : it->second;
}

bool EmbeddingDTypes::any() const {
  if (all != ServingDType::kNone) return true;
  return std::any_of(tables.begin(), tables.end(), [](const auto& t) { return t.second != ServingDType::kNone; });
}

}  // namespace recis_convert
