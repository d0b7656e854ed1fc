#include "recis_convert/formats/fast_json.h"

#include <simdjson.h>

#include <algorithm>
#include <cstring>

namespace recis_convert::fast_json {
namespace {

namespace od = simdjson::ondemand;
static_assert(kPadding >= simdjson::SIMDJSON_PADDING, "fast_json::kPadding must cover simdjson's padding");

// The document in a padded buffer: the caller's text in place when it has the padding, else a copy. Views found
// in the buffer are moved back onto the caller's text (no view ever points into the copy).
class PaddedText {
 public:
  PaddedText(std::string_view text, size_t capacity) : text_(text) {
    if (capacity >= text.size() + kPadding) {
      base_ = text.data();
      capacity_ = capacity;
    } else {
      copy_ = simdjson::padded_string(text.data(), text.size());
      base_ = copy_.data();
      capacity_ = text.size() + simdjson::SIMDJSON_PADDING;
    }
  }
  simdjson::padded_string_view view() const { return simdjson::padded_string_view(base_, text_.size(), capacity_); }
  const char* end() const { return base_ + text_.size(); }
  std::string_view on_text(const char* at, size_t size) const {
    return std::string_view(text_.data() + (at - base_), size);
  }

 private:
  std::string_view text_;
  const char* base_ = nullptr;
  size_t capacity_ = 0;
  simdjson::padded_string copy_;
};

// JSON forbids raw control characters in strings (simdjson does not check); escapes are left to the strict reader.
bool is_plain(const char* at, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    const unsigned char c = static_cast<unsigned char>(at[i]);
    if (c < 0x20 || c == '\\') return false;
  }
  return true;
}

bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// A string value as plain text: its raw token is `"..."` and maybe trailing whitespace.
std::optional<std::string_view> plain_string(od::value& value, const PaddedText& text) {
  const std::string_view token = value.raw_json_token();
  if (token.empty() || token[0] != '"') return std::nullopt;
  const size_t close = token.find('"', 1);
  if (close == std::string_view::npos || !is_plain(token.data() + 1, close - 1)) return std::nullopt;
  for (size_t i = close + 1; i < token.size(); ++i) {
    if (!is_json_space(token[i])) return std::nullopt;
  }
  return text.on_text(token.data() + 1, close - 1);
}

std::optional<std::string_view> plain_key(od::field& field, const PaddedText& text) {
  const char* start = field.key().raw();
  const void* close = std::memchr(start, '"', static_cast<size_t>(text.end() - start));
  if (close == nullptr) return std::nullopt;
  const size_t size = static_cast<size_t>(static_cast<const char*>(close) - start);
  if (!is_plain(start, size)) return std::nullopt;
  return text.on_text(start, size);
}

// Iterates an object's fields: on_field(key, value) returns false to give up. False on any error.
template <typename OnField>
bool for_each_field(od::object& object, const PaddedText& text, OnField&& on_field) {
  for (auto item : object) {
    od::field field;
    if (std::move(item).get(field)) return false;
    auto key = plain_key(field, text);
    if (!key) return false;
    od::value value = field.value();
    if (!on_field(*key, value)) return false;
  }
  return true;
}

template <typename Entry>
bool keys_of_entries_unique(const std::vector<Entry>& entries) {
  std::vector<std::string_view> keys;
  keys.reserve(entries.size());
  for (const auto& e : entries) keys.push_back(e.key);
  return unique_keys(keys);
}

// A field of a string-to-string object, kept if its value is a plain string.
bool add_string_entry(std::vector<StringEntry>& out, std::string_view key, od::value& value, const PaddedText& text) {
  auto s = plain_string(value, text);
  if (!s) return false;
  out.push_back({key, *s});
  return true;
}

std::optional<std::vector<StringEntry>> string_object(od::value& value, const PaddedText& text) {
  od::object object;
  if (value.get_object().get(object)) return std::nullopt;
  std::vector<StringEntry> out;
  const bool ok = for_each_field(object, text, [&](std::string_view key, od::value& v) {
    return add_string_entry(out, key, v, text);
  });
  if (!ok || !keys_of_entries_unique(out)) return std::nullopt;
  return out;
}

std::optional<std::vector<NumberEntry>> number_object(od::value& value, const PaddedText& text) {
  od::object object;
  if (value.get_object().get(object)) return std::nullopt;
  std::vector<NumberEntry> out;
  const bool ok = for_each_field(object, text, [&](std::string_view key, od::value& v) {
    uint64_t number = 0;
    if (v.get_uint64().get(number)) return false;
    out.push_back({key, number});
    return true;
  });
  if (!ok || !keys_of_entries_unique(out)) return std::nullopt;
  return out;
}

bool uint_array(od::value& value, std::vector<uint64_t>& out) {
  od::array array;
  if (value.get_array().get(array)) return false;
  for (auto item : array) {
    uint64_t number = 0;
    if (item.get_uint64().get(number)) return false;
    out.push_back(number);
  }
  return true;
}

// The root object of a whole document: on_field for each of its fields, then nothing but whitespace.
template <typename OnField>
bool read_root_object(const PaddedText& text, od::parser& parser, OnField&& on_field) {
  // On-demand parsing does not validate all of the structure it steps over (fuzz_fast_json found a document
  // whose object ended early without an error), so the whole document is validated first by simdjson's DOM
  // parser (stages 1 and 2, strict RFC 8259; its tree is freed at once).
  // Small documents (every data file's header) reuse one parser per thread; a big one gets its own, so that its
  // buffers are freed rather than kept for the rest of the run.
  constexpr size_t kReusedParserBytes = 16u << 20;
  const simdjson::padded_string_view view = text.view();
  if (view.size() <= kReusedParserBytes) {
    static thread_local simdjson::dom::parser validator;
    if (validator.parse(view.data(), view.size(), false).error()) return false;
  } else {
    simdjson::dom::parser validator;
    if (validator.parse(view.data(), view.size(), false).error()) return false;
  }
  od::document doc;
  if (parser.iterate(text.view()).get(doc)) return false;
  od::object root;
  if (doc.get_object().get(root)) return false;
  if (!for_each_field(root, text, on_field)) return false;
  const char* trailing = nullptr;  // past the root object, only whitespace may follow
  return doc.current_location().get(trailing) == simdjson::OUT_OF_BOUNDS;
}

}  // namespace

bool unique_keys(std::vector<std::string_view>& keys) {
  if (!std::is_sorted(keys.begin(), keys.end())) std::sort(keys.begin(), keys.end());
  return std::adjacent_find(keys.begin(), keys.end()) == keys.end();
}

std::optional<std::vector<StringEntry>> read_string_map(std::string_view text, size_t capacity) {
  const PaddedText padded(text, capacity);
  od::parser parser;
  std::vector<StringEntry> out;
  const bool ok = read_root_object(padded, parser, [&](std::string_view key, od::value& value) {
    return add_string_entry(out, key, value, padded);
  });
  if (!ok || !keys_of_entries_unique(out)) return std::nullopt;
  return out;
}

std::optional<IndexDocument> read_index(std::string_view text, size_t capacity) {
  const PaddedText padded(text, capacity);
  od::parser parser;
  IndexDocument out;
  bool blocks = false, files = false;
  const bool ok = read_root_object(padded, parser, [&](std::string_view key, od::value& value) {
    if (key == "block_index" && !blocks) {
      auto entries = number_object(value, padded);
      if (!entries) return false;
      out.blocks = std::move(*entries);
      blocks = true;
      return true;
    }
    if (key == "file_index" && !files) {
      auto entries = number_object(value, padded);
      if (!entries) return false;
      out.files = std::move(*entries);
      files = true;
      return true;
    }
    return false;  // another key, or one of them twice
  });
  if (!ok || !blocks || !files) return std::nullopt;
  return out;
}

std::optional<HeaderDocument> read_header(std::string_view text, size_t capacity) {
  const PaddedText padded(text, capacity);
  od::parser parser;
  HeaderDocument out;
  std::vector<std::string_view> names;  // every top-level key, "__metadata__" included, for the duplicate check
  const bool ok = read_root_object(padded, parser, [&](std::string_view key, od::value& value) {
    names.push_back(key);
    if (key == "__metadata__") {
      bool is_null = false;
      if (value.is_null().get(is_null)) return false;
      if (is_null) return true;
      auto entries = string_object(value, padded);
      if (!entries) return false;
      out.has_metadata = true;
      out.metadata = std::move(*entries);
      return true;
    }
    od::object entry;
    if (value.get_object().get(entry)) return false;
    HeaderTensor tensor;
    tensor.name = key;
    tensor.first_dim = static_cast<uint32_t>(out.dims.size());
    bool dtype = false, shape = false, offsets = false;
    const bool fields_ok = for_each_field(entry, padded, [&](std::string_view field, od::value& v) {
      if (field == "dtype" && !dtype) {
        auto s = plain_string(v, padded);
        if (!s) return false;
        tensor.dtype = *s;
        return dtype = true;
      }
      if (field == "shape" && !shape) {
        if (!uint_array(v, out.dims)) return false;
        tensor.rank = static_cast<uint32_t>(out.dims.size() - tensor.first_dim);
        return shape = true;
      }
      if (field == "data_offsets" && !offsets) {
        std::vector<uint64_t> pair;
        if (!uint_array(v, pair) || pair.size() != 2) return false;
        tensor.begin = pair[0];
        tensor.end = pair[1];
        return offsets = true;
      }
      return false;  // an extra field (the strict reader ignores it) or a repeated one
    });
    if (!fields_ok || !dtype || !shape || !offsets) return false;
    out.tensors.push_back(tensor);
    return true;
  });
  if (!ok || !unique_keys(names)) return std::nullopt;
  return out;
}

}  // namespace recis_convert::fast_json
