#include "recis_convert/formats/strict_json.h"

#include <algorithm>

#include <cerrno>
#include <cstring>
#include <set>
#include <sstream>
#include <vector>

#include <unistd.h>

#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/fast_json.h"

namespace recis_convert {

namespace {

// A SAX pass that records duplicate keys and the root object's key order. It runs before the DOM parse because
// nlohmann's callback parser re-scans the parent object at every nested object's end (quadratic in tensors).
class KeyAuditor : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    keys_.emplace_back();
    return true;
  }
  bool key(string_t& key) override {
    if (!keys_.back().insert(key).second && duplicate.empty()) duplicate = key;
    if (keys_.size() == 1 && depth_in_arrays_ == 0) top_level_keys.push_back(key);
    return true;
  }
  bool end_object() override {
    keys_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    ++depth_in_arrays_;
    return true;
  }
  bool end_array() override {
    --depth_in_arrays_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

  std::string duplicate;
  std::vector<std::string> top_level_keys;

 private:
  std::vector<std::set<std::string>> keys_;
  int depth_in_arrays_ = 0;
};

}  // namespace

Result<StrictJson> parse_strict_json(std::string_view text, const std::string& file, const std::string& what) {
  using json = nlohmann::json;
  if (std::memchr(text.data(), '\0', text.size()) != nullptr) return bad_input(file, what + " contains a NUL byte");
  StrictJson out;
  try {
    out.value = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return bad_input(file, what + " is not valid JSON: " + e.what());
  }
  KeyAuditor auditor;
  json::sax_parse(text.begin(), text.end(), &auditor);
  if (!auditor.duplicate.empty()) {
    return bad_input(file, what + " has the key " + json(auditor.duplicate).dump() + " twice");
  }
  if (out.value.is_object()) out.top_level_keys = std::move(auditor.top_level_keys);
  return out;
}

Result<std::string> read_small_file(const std::string& path, uint64_t max_bytes) {
  auto fd = open_input_file(path);
  if (!fd) return fd.error();
  auto stamp = stamp_of(fd.value().get(), path);
  if (!stamp) return stamp.error();
  // Refused by its size before a byte is read: a 1 GiB tensorkey.json is not read whole to find out.
  if (stamp.value().size > max_bytes) return bad_input(path, "larger than " + std::to_string(max_bytes) + " bytes");
  std::string text;
  // Room for fast_json's padding, so that big documents are parsed in place.
  text.reserve(stamp.value().size + fast_json::kPadding);
  char chunk[65536];
  while (true) {
    const ssize_t n = ::read(fd.value().get(), chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return bad_input(path, std::string("read error: ") + std::strerror(errno));
    if (n == 0) break;
    text.append(chunk, static_cast<size_t>(n));
    if (text.size() > max_bytes) return bad_input(path, "larger than " + std::to_string(max_bytes) + " bytes");
  }
  return text;
}

}  // namespace recis_convert
