// libFuzzer target: the fast JSON readers (formats/fast_json.h) against the strict ones. Whatever a fast reader
// accepts, the strict reader must accept with the same result; otherwise the fast path would be more lenient than
// the checks it stands in for, or read a document differently.
#include <cstddef>
#include <cstdint>
#include <string>

#include "recis_convert/formats/fast_json.h"
#include "recis_convert/formats/strict_json.h"

namespace {

using recis_convert::parse_strict_json;
namespace fast_json = recis_convert::fast_json;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (auto map = fast_json::read_string_map(text, 0)) {
    auto strict = parse_strict_json(text, "f", "tensorkey.json");
    check(strict && strict.value().value.is_object() && strict.value().value.size() == map->size());
    for (const auto& e : *map) check(strict.value().value.at(std::string(e.key)) == std::string(e.value));
  }
  if (auto index = fast_json::read_index(text, 0)) {
    auto strict = parse_strict_json(text, "f", "index");
    check(strict && strict.value().value.size() == 2);
    const auto& root = strict.value().value;
    check(root.at("block_index").size() == index->blocks.size() && root.at("file_index").size() == index->files.size());
    for (const auto& b : index->blocks) check(root.at("block_index").at(std::string(b.key)) == b.value);
    for (const auto& f : index->files) check(root.at("file_index").at(std::string(f.key)) == f.value);
  }
  if (auto header = fast_json::read_header(text, 0)) {
    auto strict = parse_strict_json(text, "f", "header");
    check(strict.ok());
    const auto& root = strict.value().value;
    size_t tensors = 0;
    for (const auto& name : strict.value().top_level_keys) {
      if (name == "__metadata__") continue;
      const auto& t = header->tensors.at(tensors++);
      check(name == t.name && root.at(name).at("dtype") == std::string(t.dtype));
      const auto& shape = root.at(name).at("shape");
      check(shape.size() == t.rank);
      for (uint32_t i = 0; i < t.rank; ++i) check(shape.at(i) == header->dims.at(t.first_dim + i));
      check(root.at(name).at("data_offsets") == nlohmann::json::array({t.begin, t.end}));
    }
    check(tensors == header->tensors.size());
    if (header->has_metadata) check(root.at("__metadata__").size() == header->metadata.size());
  }
  return 0;
}
