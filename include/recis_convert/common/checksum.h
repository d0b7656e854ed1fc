// Streaming XXH3-64 checksum of exported files (libxxhash): fast enough to run on every byte on the way out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "recis_convert/common/error.h"

struct XXH3_state_s;

namespace recis_convert {

struct FileDigest {
  uint64_t bytes = 0;
  uint64_t checksum = 0;
};

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
  // Streams a whole file (1 MiB at a time). A file that cannot be read is an error of kind `on_error` (kOutput
  // when reading back what we wrote, kBadInput when verifying an export) naming the path.
  static Result<FileDigest> of_file(const std::string& path, ExitCode on_error);

 private:
  XXH3_state_s* state_;
};

}  // namespace recis_convert
