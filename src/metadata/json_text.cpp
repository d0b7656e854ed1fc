#include "recis_convert/metadata/json_text.h"

#include <cstdio>

namespace recis_convert {

void append_json_string(std::string& out, std::string_view text) {
  out.push_back('"');
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c <= 0x1f) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);  // nlohmann's spelling: lower-case hex
          out += escaped;
        } else {
          out.push_back(ch);  // UTF-8 bytes pass through, as nlohmann dumps without ensure_ascii
        }
    }
  }
  out.push_back('"');
}

}  // namespace recis_convert
