// safetensors: read and validate a file header once into a checked type; write RecIS-style headers.
//
// Validation follows the reference Rust reader (huggingface/safetensors tensor.rs), not the README prose:
// header length <= 100,000,000 bytes and inside the file; UTF-8 JSON object (leading/trailing JSON whitespace
// allowed, NUL bytes rejected); no duplicate keys; known dtype names (plus RecIS's lower-case "bool");
// data_offsets match shape x dtype size, tile the data area without holes or overlaps, and the last one ends
// exactly at the end of the file; "__metadata__" is a string-to-string map.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "recis_convert/common/error.h"

namespace recis_convert {

inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference limit (decimal, not MiB)
inline constexpr uint64_t kLengthPrefixBytes = 8;

enum class DType {
  kBool, kU8, kI8, kF8_E5M2, kF8_E4M3, kF8_E8M0, kF8_E4M3FNUZ, kF8_E5M2FNUZ, kI16, kU16, kF16, kBF16,
  kI32, kU32, kF32, kC64, kF64, kI64, kU64, kF4, kF6_E2M3, kF6_E3M2,
};

// The dtype for a header spelling ("F32", "BOOL", RecIS's "bool"...), or nullopt if unknown.
std::optional<DType> parse_dtype(std::string_view spelling);
uint32_t dtype_bits(DType dtype);
// The safetensors header spelling ("F32", "U8"...).
std::string dtype_spelling(DType dtype);
// Lower-case torch name as RecIS writes it in the torch_rank json ("float32", "bfloat16"...), "" if torch has none.
std::string dtype_torch_name(DType dtype);

// "[2,16]": a shape as the readers' messages write it.
std::string shape_text(const std::vector<uint64_t>& shape);

struct TensorInfo {
  std::string name;
  DType dtype = DType::kU8;
  std::string dtype_spelling;   // exactly as in the source header, so a rewrite keeps it
  std::vector<uint64_t> shape;
  uint64_t begin = 0;           // data_offsets, relative to the start of the data area
  uint64_t end = 0;

  uint64_t nbytes() const { return end - begin; }
};

// A checked header: every TensorInfo is consistent with its dtype and shape, and together they tile the data area.
struct SafetensorsHeader {
  uint64_t header_bytes = 0;             // N, the JSON length including padding
  uint64_t file_size = 0;
  std::vector<TensorInfo> tensors;       // in header (JSON) order
  std::optional<std::vector<std::pair<std::string, std::string>>> metadata;  // "__metadata__", in order

  uint64_t data_start() const { return kLengthPrefixBytes + header_bytes; }
};

// Checks the 8-byte length prefix against the limits and the file size; returns N.
Result<uint64_t> check_length_prefix(const unsigned char prefix[8], uint64_t file_size, const std::string& file);

// Parses and validates the N header bytes of a file of file_size bytes. `file` is only used in error messages.
// `capacity`: the bytes readable at header_json.data(); with fast_json::kPadding more than its size, the header
// is parsed in place rather than copied first.
Result<SafetensorsHeader> parse_safetensors_header(std::string_view header_json, uint64_t file_size,
                                                   const std::string& file, size_t capacity = 0);

// Reads and validates the header of an open file (pread, no seek).
Result<SafetensorsHeader> read_safetensors_header(int fd, uint64_t file_size, const std::string& file);

// The file preamble RecIS writes for these tensors: u64 LE length, compact JSON with keys in the given order and
// per-tensor keys "dtype, shape, data_offsets", then 1..8 spaces (always at least one, as RecIS does) so the
// data area starts at a multiple of 8. Offsets are taken from the TensorInfos as given.
std::string serialize_recis_header(const std::vector<TensorInfo>& tensors,
                                   const std::optional<std::vector<std::pair<std::string, std::string>>>& metadata);

}  // namespace recis_convert
