// Fast readers for the big, flat JSON documents of a checkpoint: `index` and `tensorkey.json` (a million blocks
// are 140 MB) and the data files' headers. They run simdjson's on-demand parser and return views into the text,
// with no DOM and no string per value.
//
// A fast reader only recognizes the expected shape of a valid document, with plain strings (no escape, no
// control character: what RecIS and Python write). It returns nullopt for anything else, valid or not, and the
// caller then runs the strict reader (strict_json.h), which gives the verdict and its error message. So the fast
// path is never more lenient and never changes a message: fuzz/fuzz_fast_json.cpp checks that whatever a fast
// reader accepts, the strict reader accepts with the same result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace recis_convert::fast_json {

// simdjson reads up to this many bytes past a document's end. A text whose buffer has them (`capacity`, e.g. a
// std::string's capacity()) is parsed in place; otherwise it is copied once.
inline constexpr size_t kPadding = 64;

struct StringEntry {
  std::string_view key;
  std::string_view value;
};

struct NumberEntry {
  std::string_view key;
  uint64_t value = 0;
};

// {"block_index": {key: uint, ...}, "file_index": {name: uint, ...}}, both present, no other key.
struct IndexDocument {
  std::vector<NumberEntry> blocks;  // document order
  std::vector<NumberEntry> files;
};

// A safetensors header: {name: {"dtype": str, "shape": [uint...], "data_offsets": [uint, uint]}, ...} with an
// optional "__metadata__" that is null or a string-to-string object. No other field in a tensor entry.
struct HeaderTensor {
  std::string_view name;
  std::string_view dtype;
  uint32_t first_dim = 0;  // shape = HeaderDocument::dims[first_dim, first_dim + rank)
  uint32_t rank = 0;
  uint64_t begin = 0;
  uint64_t end = 0;
};
struct HeaderDocument {
  std::vector<HeaderTensor> tensors;  // document order, "__metadata__" left out
  std::vector<uint64_t> dims;
  bool has_metadata = false;          // an object (a null "__metadata__" counts as absent, as in the strict reader)
  std::vector<StringEntry> metadata;  // document order
};

// Views point into `text`. Keys are unique within each object (checked), in document order.
std::optional<std::vector<StringEntry>> read_string_map(std::string_view text, size_t capacity);
std::optional<IndexDocument> read_index(std::string_view text, size_t capacity);
std::optional<HeaderDocument> read_header(std::string_view text, size_t capacity);

// True if no two keys are equal. Sorts `keys` unless already sorted (bytewise, as std::string compares).
bool unique_keys(std::vector<std::string_view>& keys);

}  // namespace recis_convert::fast_json
