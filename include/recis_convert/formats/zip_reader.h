// A strict reader of the zip container of torch.save files: the central directory (zip64 included) is read and
// checked once into a ZipIndex; entries are then read by name with their CRC-32 verified.
//
// Only what torch.save writes is accepted: stored (uncompressed), unencrypted entries on a single disk. A
// compressed or encrypted entry, an entry or directory outside the file, or a local header that disagrees with
// the central directory is an error naming the archive and the entry. torch.jit.save also deflates the code/
// records: ZipCompression::kCopyOnly indexes those, to be copied raw (read_zip_raw), never read.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "recis_convert/common/error.h"

namespace recis_convert {

struct ZipEntry {
  std::string name;
  uint64_t data_offset = 0;  // of the stored bytes in the file that holds the archive
  uint64_t size = 0;         // uncompressed
  uint32_t crc32 = 0;        // of the uncompressed bytes
  uint16_t method = 0;       // 0 stored, 8 deflated (kCopyOnly)
  uint64_t stored_size = 0;  // the bytes in the archive: size, unless deflated
};

enum class ZipCompression { kRefuse, kCopyOnly };

struct ZipIndex {
  std::string path;
  uint64_t file_size = 0;
  std::map<std::string, ZipEntry> entries;
};

// Reads and checks the central directory of an open archive (pread only).
Result<ZipIndex> read_zip_index(int fd, uint64_t file_size, const std::string& path,
                                ZipCompression compression = ZipCompression::kRefuse);
// The same for an archive that is `size` bytes of a file from `base` on (a Distributed Checkpoint's item): its zip
// offsets are relative to `base`; its entries' data_offset are the file's.
Result<ZipIndex> read_zip_index_at(int fd, uint64_t base, uint64_t size, const std::string& path,
                                   ZipCompression compression = ZipCompression::kRefuse);

// Reads a stored entry whole (at most max_bytes) and verifies its CRC-32; a deflated one is refused.
Result<std::string> read_zip_entry(int fd, const ZipIndex& index, const ZipEntry& entry, uint64_t max_bytes);

// An entry's bytes as the archive holds them (deflated ones compressed), to copy into another archive.
Result<std::string> read_zip_raw(int fd, const ZipIndex& index, const ZipEntry& entry, uint64_t max_bytes);

}  // namespace recis_convert
