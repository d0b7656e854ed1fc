// JSON parsing that is stricter than nlohmann's defaults, for every file this tool reads:
// a NUL byte is an error (nlohmann would stop there and accept the prefix), and so is a key repeated within
// one object (nlohmann would silently keep the last value).
//
// Objects are parsed into nlohmann::json (std::map, O(log n) inserts). nlohmann::ordered_json would keep key
// order but inserts in linear time, which made a 100,000-tensor header take 20 s; the order of the top-level
// keys, the only order this tool needs (a safetensors header's tensor order), is recorded separately.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "recis_convert/common/error.h"

namespace recis_convert {

struct StrictJson {
  nlohmann::json value;
  std::vector<std::string> top_level_keys;  // keys of the root object in document order (empty otherwise)
};

// Parses `text`. `file` and `what` ("header", "index"...) only shape the error message.
Result<StrictJson> parse_strict_json(std::string_view text, const std::string& file, const std::string& what);

// Reads a whole (small) file: index, tensorkey.json, fg.json... Errors are kBadInput naming the file.
Result<std::string> read_small_file(const std::string& path, uint64_t max_bytes);

}  // namespace recis_convert
