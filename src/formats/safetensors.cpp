#include "recis_convert/formats/safetensors.h"

#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/fast_json.h"
#include "recis_convert/formats/strict_json.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace recis_convert {
namespace {

using json = nlohmann::json;

struct DTypeRow {
  DType dtype;
  const char* spelling;
  uint32_t bits;
  const char* torch_name;
};

// The reference's dtype list (tensor.rs). torch_name is what RecIS's type_map_ writes; "" where libtorch 1.13
// has no such type.
constexpr std::array<DTypeRow, 22> kDTypes = {{
    {DType::kBool, "BOOL", 8, "bool"},       {DType::kU8, "U8", 8, "uint8"},
    {DType::kI8, "I8", 8, "int8"},           {DType::kF8_E5M2, "F8_E5M2", 8, ""},
    {DType::kF8_E4M3, "F8_E4M3", 8, ""},     {DType::kF8_E8M0, "F8_E8M0", 8, ""},
    {DType::kF8_E4M3FNUZ, "F8_E4M3FNUZ", 8, ""}, {DType::kF8_E5M2FNUZ, "F8_E5M2FNUZ", 8, ""},
    {DType::kI16, "I16", 16, "int16"},       {DType::kU16, "U16", 16, ""},
    {DType::kF16, "F16", 16, "float16"},     {DType::kBF16, "BF16", 16, "bfloat16"},
    {DType::kI32, "I32", 32, "int32"},       {DType::kU32, "U32", 32, ""},
    {DType::kF32, "F32", 32, "float32"},     {DType::kC64, "C64", 64, "complex64"},
    {DType::kF64, "F64", 64, "float64"},     {DType::kI64, "I64", 64, "int64"},
    {DType::kU64, "U64", 64, ""},            {DType::kF4, "F4", 4, ""},
    {DType::kF6_E2M3, "F6_E2M3", 6, ""},     {DType::kF6_E3M2, "F6_E3M2", 6, ""},
}};

const DTypeRow& row_of(DType dtype) {
  for (const auto& row : kDTypes) {
    if (row.dtype == dtype) return row;
  }
  return kDTypes[0];  // unreachable: every enumerator has a row
}

std::string json_quoted(const std::string& name) { return json(name).dump(); }

bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }

// One tensor entry: {"dtype": str, "shape": [uint...], "data_offsets": [uint, uint]}. Unknown extra fields are
// ignored, as the reference (serde without deny_unknown_fields) does.
Result<TensorInfo> parse_entry(const std::string& name, const json& entry, const std::string& file) {
  // Error texts are built only on failure: this runs once per tensor of every header.
  auto where = [&name] { return "tensor " + json_quoted(name); };
  if (!entry.is_object()) return bad_input(file, where() + ": entry is not a JSON object");
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(field)) return bad_input(file, where() + ": missing \"" + field + "\"");
  }
  TensorInfo info;
  info.name = name;
  const auto& dtype = entry["dtype"];
  if (!dtype.is_string()) return bad_input(file, where() + ": dtype is not a string");
  info.dtype_spelling = dtype.get<std::string>();
  auto parsed = parse_dtype(info.dtype_spelling);
  if (!parsed) return bad_input(file, where() + ": unknown dtype " + json_quoted(info.dtype_spelling));
  info.dtype = *parsed;

  const auto& shape = entry["shape"];
  if (!shape.is_array()) return bad_input(file, where() + ": shape is not an array");
  for (const auto& dim : shape) {
    // is_number_unsigned rejects negatives, fractions and integers beyond 2^64 (which nlohmann reads as floats).
    if (!dim.is_number_unsigned()) return bad_input(file, where() + ": shape has a non-integer or negative entry");
    info.shape.push_back(dim.get<uint64_t>());
  }
  const auto& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    return bad_input(file, where() + ": data_offsets is not a pair of non-negative integers");
  }
  info.begin = offsets[0].get<uint64_t>();
  info.end = offsets[1].get<uint64_t>();
  return info;
}

// Sizes and tiling, in the reference's order: sort by offsets, then each tensor must start where the previous
// one ended and hold exactly prod(shape) * bits / 8 bytes.
Status check_layout(std::vector<TensorInfo> tensors, uint64_t data_bytes, const std::string& file) {
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
  });
  uint64_t expected_begin = 0;
  for (const auto& t : tensors) {
    auto where = [&t] {
      return "tensor " + json_quoted(t.name) + " data_offsets [" + std::to_string(t.begin) + "," +
             std::to_string(t.end) + "]";
    };
    if (t.begin != expected_begin || t.end < t.begin) {
      return bad_input(file, where() + " overlap or leave a hole (expected begin " + std::to_string(expected_begin) +
                                 ")");
    }
    uint64_t elements = 1;
    for (uint64_t dim : t.shape) {
      if (!checked_mul(elements, dim, &elements)) return bad_input(file, where() + ": shape size overflows");
    }
    uint64_t bits = 0;
    if (!checked_mul(elements, dtype_bits(t.dtype), &bits)) return bad_input(file, where() + ": shape size overflows");
    if (bits % 8 != 0) return bad_input(file, where() + ": tensor does not end on a byte boundary");
    if (t.end - t.begin != bits / 8) {
      return bad_input(file, where() + " do not match shape " + shape_text(t.shape) + " " + t.dtype_spelling + " (" +
                                 std::to_string(bits / 8) + " bytes)");
    }
    expected_begin = t.end;
  }
  if (expected_begin != data_bytes) {
    return bad_input(file, "tensors cover " + std::to_string(expected_begin) + " data bytes but the file has " +
                               std::to_string(data_bytes) + " after the header (truncated or trailing bytes)");
  }
  return Ok{};
}

}  // namespace

std::optional<DType> parse_dtype(std::string_view spelling) {
  if (spelling == "bool") return DType::kBool;  // RecIS writes kBool in lower case (dtype_serialize.cc)
  for (const auto& row : kDTypes) {
    if (spelling == row.spelling) return row.dtype;
  }
  return std::nullopt;
}

uint32_t dtype_bits(DType dtype) { return row_of(dtype).bits; }
std::string dtype_spelling(DType dtype) { return row_of(dtype).spelling; }
std::string dtype_torch_name(DType dtype) { return row_of(dtype).torch_name; }

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? "," : "") + std::to_string(shape[i]);
  return out + "]";
}


Result<uint64_t> check_length_prefix(const unsigned char prefix[8], uint64_t file_size, const std::string& file) {
  if (file_size < kLengthPrefixBytes) return bad_input(file, "file is too small for a safetensors header");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];  // little-endian, whatever the host
  if (n > kMaxHeaderBytes) {
    return bad_input(file, "header length " + std::to_string(n) + " exceeds the limit of " +
                               std::to_string(kMaxHeaderBytes) + " bytes");
  }
  if (n > file_size - kLengthPrefixBytes) {
    return bad_input(file, "header length " + std::to_string(n) + " runs past the end of the file (" +
                               std::to_string(file_size) + " bytes)");
  }
  return n;
}

namespace {

// The header as the fast reader sees it; nullopt leaves the verdict to the strict reader below.
std::optional<SafetensorsHeader> recognize_header(std::string_view header_json, size_t capacity, uint64_t file_size) {
  auto doc = fast_json::read_header(header_json, capacity);
  if (!doc) return std::nullopt;
  SafetensorsHeader header;
  header.header_bytes = header_json.size();
  header.file_size = file_size;
  header.tensors.reserve(doc->tensors.size());
  for (const auto& t : doc->tensors) {
    auto dtype = parse_dtype(t.dtype);
    if (!dtype) return std::nullopt;
    TensorInfo info;
    info.name = std::string(t.name);
    info.dtype = *dtype;
    info.dtype_spelling = std::string(t.dtype);
    info.shape.assign(doc->dims.begin() + t.first_dim, doc->dims.begin() + t.first_dim + t.rank);
    info.begin = t.begin;
    info.end = t.end;
    header.tensors.push_back(std::move(info));
  }
  if (doc->has_metadata) {
    std::vector<std::pair<std::string, std::string>> metadata;
    for (const auto& m : doc->metadata) metadata.emplace_back(m.key, m.value);
    std::sort(metadata.begin(), metadata.end());  // the strict reader's DOM orders object keys
    header.metadata = std::move(metadata);
  }
  return header;
}

}  // namespace

Result<SafetensorsHeader> parse_safetensors_header(std::string_view header_json, uint64_t file_size,
                                                   const std::string& file, size_t capacity) {
  if (auto header = recognize_header(header_json, capacity, file_size)) {
    auto layout = check_layout(header->tensors, file_size - header->data_start(), file);
    if (!layout) return layout.error();
    return std::move(*header);
  }
  auto parsed = parse_strict_json(header_json, file, "header");
  if (!parsed) return parsed.error();
  const json& root = parsed.value().value;
  if (!root.is_object()) return bad_input(file, "header is not a JSON object");

  SafetensorsHeader header;
  header.header_bytes = header_json.size();
  header.file_size = file_size;
  header.tensors.reserve(root.size());
  for (const std::string& name : parsed.value().top_level_keys) {
    const json& value = root[name];
    if (name == "__metadata__") {
      if (value.is_null()) continue;
      if (!value.is_object()) return bad_input(file, "__metadata__ is not a JSON object");
      std::vector<std::pair<std::string, std::string>> metadata;
      for (const auto& [key, text] : value.items()) {
        if (!text.is_string()) return bad_input(file, "__metadata__ value of " + json_quoted(key) + " is not a string");
        metadata.emplace_back(key, text.get<std::string>());
      }
      header.metadata = std::move(metadata);
      continue;
    }
    auto entry = parse_entry(name, value, file);
    if (!entry) return entry.error();
    header.tensors.push_back(std::move(entry).value());
  }
  auto layout = check_layout(header.tensors, file_size - header.data_start(), file);
  if (!layout) return layout.error();
  return header;
}

Result<SafetensorsHeader> read_safetensors_header(int fd, uint64_t file_size, const std::string& file) {
  if (file_size < kLengthPrefixBytes) {
    return bad_input(file, "file is " + std::to_string(file_size) + " bytes, too small for a safetensors header");
  }
  unsigned char prefix[8];
  auto read = read_exact(fd, 0, sizeof prefix, prefix, file, "the header length");
  if (!read) return read.error();
  auto n = check_length_prefix(prefix, file_size, file);
  if (!n) return n.error();
  std::string json(n.value() + fast_json::kPadding, '\0');  // the padding lets the fast reader parse in place
  read = read_exact(fd, kLengthPrefixBytes, n.value(), json.data(), file, "the header");
  if (!read) return read.error();
  return parse_safetensors_header(std::string_view(json.data(), n.value()), file_size, file, json.size());
}

std::string serialize_recis_header(const std::vector<TensorInfo>& tensors,
                                   const std::optional<std::vector<std::pair<std::string, std::string>>>& metadata) {
  // Written by hand rather than through nlohmann::ordered_json, whose inserts are linear (quadratic headers);
  // strings are escaped by nlohmann's own dump, so the bytes equal RecIS's `ordered_json::dump()`.
  std::string out(kLengthPrefixBytes, '\0');
  out += '{';
  bool first = true;
  if (metadata) {
    out += "\"__metadata__\":{";
    for (size_t i = 0; i < metadata->size(); ++i) {
      out += (i ? "," : "") + json_quoted((*metadata)[i].first) + ":" + json_quoted((*metadata)[i].second);
    }
    out += '}';
    first = false;
  }
  for (const auto& t : tensors) {
    if (!first) out += ',';
    first = false;
    out += json_quoted(t.name);
    out += ":{\"dtype\":";
    out += json_quoted(t.dtype_spelling);
    out += ",\"shape\":";
    out += shape_text(t.shape);
    out += ",\"data_offsets\":[" + std::to_string(t.begin) + "," + std::to_string(t.end) + "]}";
  }
  out += '}';
  const uint64_t json_bytes = out.size() - kLengthPrefixBytes;
  out.append(8 - json_bytes % 8, ' ');  // RecIS always pads 1..8 spaces (table_writer.cc)
  const uint64_t n = out.size() - kLengthPrefixBytes;
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

}  // namespace recis_convert
