// Writes a zip archive as torch's own writer does (PyTorchStreamWriter): stored, uncompressed entries whose data
// starts on a 64-byte boundary (padding in an extra field), CRC-32 of each, no zip64. Used to write a TorchScript
// archive whose storages were replaced (dense/weight_fill.h); zip_reader.h reads what it writes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/common/file_io.h"

namespace recis_convert {

// Without zip64 every offset and size must stay below 4 GiB; a dense network is a few MiB to a few hundred.
inline constexpr uint64_t kMaxZipWriterBytes = 0xFFFFFFFFull;
inline constexpr uint64_t kZipDataAlignment = 64;  // torch's kFieldAlignment: storages can be mmapped

class ZipWriter {
 public:
  // Creates (truncates) the archive at `path`.
  static Result<ZipWriter> create(const std::string& path);

  Status add(const std::string& name, std::string_view data);
  // An entry copied as another archive holds it (zip_reader.h's read_zip_raw): `stored` is its stored bytes,
  // compressed with `method`; `crc32` and `size` describe the uncompressed bytes.
  Status add_raw(const std::string& name, uint16_t method, uint32_t crc32, uint64_t size, std::string_view stored);
  // Writes the central directory and closes the file; nothing can be added after.
  Status finish();

 private:
  struct Written {
    std::string name;
    uint16_t method = 0;
    uint32_t crc32 = 0;
    uint32_t stored_size = 0;
    uint32_t size = 0;
    uint32_t header_offset = 0;
  };
  ZipWriter(std::string path, FileDescriptor fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  Status append(std::string_view bytes);

  std::string path_;
  FileDescriptor fd_;
  uint64_t offset_ = 0;
  std::vector<Written> written_;
};

}  // namespace recis_convert
