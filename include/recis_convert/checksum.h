// Streaming XXH3-64 checksum of exported files (libxxhash): fast enough to run on every byte on the way out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

struct XXH3_state_s;

namespace recis_convert {

class Checksum {
 public:
  Checksum();
  ~Checksum();
  Checksum(const Checksum&) = delete;
  Checksum& operator=(const Checksum&) = delete;

  void update(const void* data, size_t size);
  uint64_t digest() const;

  static uint64_t of(const void* data, size_t size);
  // 16 lower-case hex digits, the form used in manifest.json.
  static std::string hex(uint64_t digest);

 private:
  XXH3_state_s* state_;
};

}  // namespace recis_convert
