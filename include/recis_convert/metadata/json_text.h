// JSON written as text, byte for byte as nlohmann's dump() writes it (UTF-8 kept, control characters escaped as
// \b \t \n \f \r or \u00xx, '"' and '\' escaped), for the big metadata files: a million entries written straight
// into a string rather than through a tree of a million nodes.
#pragma once

#include <string>
#include <string_view>

namespace recis_convert {

// Appends `text` as a JSON string, quotes included. `text` is valid UTF-8 (it came from a checked document).
void append_json_string(std::string& out, std::string_view text);

}  // namespace recis_convert
