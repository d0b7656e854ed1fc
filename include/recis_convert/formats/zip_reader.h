// A strict reader of the zip container of torch.save files: the central directory (zip64 included) is read and
// checked once into a ZipIndex; entries are then read by name with their CRC-32 verified.
//
// Only what torch.save writes is accepted: stored (uncompressed), unencrypted entries on a single disk. A
// compressed or encrypted entry, an entry or directory outside the file, or a local header that disagrees with
// the central directory is an error naming the archive and the entry.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "recis_convert/common/error.h"

namespace recis_convert {

struct ZipEntry {
  std::string name;
  uint64_t data_offset = 0;  // of the stored bytes in the archive file
  uint64_t size = 0;
  uint32_t crc32 = 0;
};

struct ZipIndex {
  std::string path;
  uint64_t file_size = 0;
  std::map<std::string, ZipEntry> entries;
};

// Reads and checks the central directory of an open archive (pread only).
Result<ZipIndex> read_zip_index(int fd, uint64_t file_size, const std::string& path);

// Reads an entry whole (at most max_bytes) and verifies its CRC-32.
Result<std::string> read_zip_entry(int fd, const ZipIndex& index, const ZipEntry& entry, uint64_t max_bytes);

}  // namespace recis_convert
