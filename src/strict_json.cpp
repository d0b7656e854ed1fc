#include "recis_convert/strict_json.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

namespace recis_convert {

Result<nlohmann::ordered_json> parse_strict_json(std::string_view text, const std::string& file,
                                                 const std::string& what) {
  using ordered_json = nlohmann::ordered_json;
  if (std::memchr(text.data(), '\0', text.size()) != nullptr) return bad_input(file, what + " contains a NUL byte");
  std::vector<std::set<std::string>> keys_per_object;
  std::string duplicate;
  auto callback = [&](int /*depth*/, ordered_json::parse_event_t event, ordered_json& parsed) {
    using E = ordered_json::parse_event_t;
    if (event == E::object_start) keys_per_object.emplace_back();
    if (event == E::object_end) keys_per_object.pop_back();
    if (event == E::key && !keys_per_object.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  ordered_json root;
  try {
    root = ordered_json::parse(text.begin(), text.end(), callback);
  } catch (const nlohmann::json::exception& e) {
    return bad_input(file, what + " is not valid JSON: " + e.what());
  }
  if (!duplicate.empty()) return bad_input(file, what + " has the key " + ordered_json(duplicate).dump() + " twice");
  return root;
}

Result<std::string> read_small_file(const std::string& path, uint64_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return bad_input(path, std::string("cannot open: ") + std::strerror(errno));
  std::string text;
  char chunk[65536];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    text.append(chunk, static_cast<size_t>(in.gcount()));
    if (text.size() > max_bytes) return bad_input(path, "larger than " + std::to_string(max_bytes) + " bytes");
  }
  if (in.bad()) return bad_input(path, "read error");
  return text;
}

}  // namespace recis_convert
