// JSON parsing that is stricter than nlohmann's defaults, for every file this tool reads:
// a NUL byte is an error (nlohmann would stop there and accept the prefix), and so is a key repeated within
// one object (nlohmann would silently keep the last value).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "recis_convert/error.h"

namespace recis_convert {

// Parses `text` keeping key order. `file` and `what` ("header", "index"...) only shape the error message.
Result<nlohmann::ordered_json> parse_strict_json(std::string_view text, const std::string& file,
                                                 const std::string& what);

// Reads a whole (small) file: index, tensorkey.json, fg.json... Errors are kBadInput naming the file.
Result<std::string> read_small_file(const std::string& path, uint64_t max_bytes);

}  // namespace recis_convert
