#include "recis_convert/formats/zip_reader.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "recis_convert/common/file_io.h"

namespace recis_convert {
namespace {

constexpr uint32_t kEndOfCentralDirectory = 0x06054b50;
constexpr uint32_t kZip64EndLocator = 0x07064b50;
constexpr uint32_t kZip64End = 0x06064b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint64_t kDeflated = 8;
constexpr uint64_t kMaxCentralDirectoryBytes = 1ull << 30;

uint64_t le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct Directory {
  uint64_t entries = 0;
  uint64_t size = 0;
  uint64_t offset = 0;
};

// Offsets are relative to the archive's first byte, which is `base` bytes into the file.
Result<Directory> find_directory(int fd, uint64_t base, uint64_t file_size, const std::string& path) {
  if (file_size < 22) return bad_input(path, "not a zip archive (too small): torch.save's legacy format is not supported");
  const uint64_t tail_size = std::min<uint64_t>(file_size, 22 + 65535);
  std::vector<unsigned char> tail(tail_size);
  auto read = read_exact(fd, base + file_size - tail_size, tail_size, tail.data(), path, "the end of the archive");
  if (!read) return read.error();
  for (int64_t at = static_cast<int64_t>(tail_size) - 22; at >= 0; --at) {
    const unsigned char* p = tail.data() + at;
    if (le(p, 4) != kEndOfCentralDirectory) continue;
    if (static_cast<uint64_t>(at) + 22 + le(p + 20, 2) != tail_size) continue;  // the comment must end the file
    Directory dir{le(p + 10, 2), le(p + 12, 4), le(p + 16, 4)};
    if (le(p + 4, 2) != 0 || le(p + 6, 2) != 0) return bad_input(path, "multi-disk zip archives are not supported");
    const uint64_t eocd = file_size - tail_size + static_cast<uint64_t>(at);
    if (dir.entries == 0xffff || dir.size == 0xffffffff || dir.offset == 0xffffffff) {
      // zip64: the locator sits right before the end record and points at the zip64 end record.
      if (eocd < 20) return bad_input(path, "zip64 end-of-directory locator missing");
      unsigned char locator[20];
      auto got = read_exact(fd, base + eocd - 20, 20, locator, path, "the zip64 locator");
      if (!got) return got.error();
      if (le(locator, 4) != kZip64EndLocator) return bad_input(path, "zip64 end-of-directory locator missing");
      const uint64_t record_at = le(locator + 8, 8);
      unsigned char record[56];
      if (record_at > file_size || file_size - record_at < 56) return bad_input(path, "zip64 end record outside the file");
      got = read_exact(fd, base + record_at, 56, record, path, "the zip64 end record");
      if (!got) return got.error();
      if (le(record, 4) != kZip64End) return bad_input(path, "bad zip64 end record signature");
      dir = Directory{le(record + 32, 8), le(record + 40, 8), le(record + 48, 8)};
    }
    if (dir.offset > file_size || dir.size > file_size - dir.offset) {
      return bad_input(path, "central directory lies outside the file (truncated archive?)");
    }
    if (dir.size > kMaxCentralDirectoryBytes) return bad_input(path, "central directory is unreasonably large");
    return dir;
  }
  return bad_input(path, "not a zip archive (no end-of-central-directory record): truncated, or torch.save's legacy "
                         "non-zip format, which is not supported");
}

}  // namespace

Result<ZipIndex> read_zip_index(int fd, uint64_t file_size, const std::string& path, ZipCompression compression) {
  return read_zip_index_at(fd, 0, file_size, path, compression);
}

Result<ZipIndex> read_zip_index_at(int fd, uint64_t base, uint64_t file_size, const std::string& path,
                                   ZipCompression compression) {
  auto dir = find_directory(fd, base, file_size, path);
  if (!dir) return dir.error();
  std::vector<unsigned char> cd(dir.value().size);
  auto read = read_exact(fd, base + dir.value().offset, cd.size(), cd.data(), path, "the central directory");
  if (!read) return read.error();

  ZipIndex index;
  index.path = path;
  index.file_size = file_size;
  size_t at = 0;
  for (uint64_t i = 0; i < dir.value().entries; ++i) {
    if (cd.size() - at < 46 || le(&cd[at], 4) != kCentralHeader) return bad_input(path, "corrupt central directory");
    const unsigned char* h = &cd[at];
    const uint64_t flags = le(h + 8, 2), method = le(h + 10, 2);
    uint64_t compressed = le(h + 20, 4), size = le(h + 24, 4), local = le(h + 42, 4);
    const size_t name_len = le(h + 28, 2), extra_len = le(h + 30, 2), comment_len = le(h + 32, 2);
    if (cd.size() - at - 46 < name_len + extra_len + comment_len) return bad_input(path, "corrupt central directory");
    ZipEntry entry;
    entry.name.assign(reinterpret_cast<const char*>(h + 46), name_len);
    entry.crc32 = static_cast<uint32_t>(le(h + 16, 4));
    // zip64 extended information: the 8-byte values present are those whose 4-byte field is all ones, in order.
    for (size_t e = 0; e + 4 <= extra_len;) {
      const unsigned char* x = h + 46 + name_len + e;
      const size_t id = le(x, 2), len = le(x + 2, 2);
      if (e + 4 + len > extra_len) return bad_input(path, "entry \"" + entry.name + "\": corrupt extra field");
      if (id == 0x0001) {
        size_t k = 4;
        for (uint64_t* field : {&size, &compressed, &local}) {
          if (*field != 0xffffffff) continue;
          if (k + 8 > 4 + len) return bad_input(path, "entry \"" + entry.name + "\": corrupt zip64 field");
          *field = le(x + k, 8);
          k += 8;
        }
      }
      e += 4 + len;
    }
    const std::string where = "entry \"" + entry.name + "\"";
    if (flags & 1) return bad_input(path, where + " is encrypted");
    const bool copied_deflated = compression == ZipCompression::kCopyOnly && method == kDeflated;
    if ((method != 0 || compressed != size) && !copied_deflated) {
      return bad_input(path, where + " is compressed (method " + std::to_string(method) +
                                 "); torch.save stores entries uncompressed");
    }
    if (local > file_size || file_size - local < 30) return bad_input(path, where + ": local header outside the file");
    unsigned char lh[30];
    auto got = read_exact(fd, base + local, 30, lh, path, where);
    if (!got) return got.error();
    if (le(lh, 4) != kLocalHeader || le(lh + 26, 2) != name_len) {
      return bad_input(path, where + ": local header does not match the central directory");
    }
    const uint64_t data_at = local + 30 + name_len + le(lh + 28, 2);
    entry.data_offset = base + data_at;
    entry.size = size;
    entry.method = static_cast<uint16_t>(method);
    entry.stored_size = compressed;
    if (data_at > file_size || entry.stored_size > file_size - data_at) {
      return bad_input(path, where + " runs past the end of the archive (truncated?)");
    }
    if (!index.entries.emplace(entry.name, entry).second) return bad_input(path, where + " appears twice");
    at += 46 + name_len + extra_len + comment_len;
  }
  return index;
}

Result<std::string> read_zip_raw(int fd, const ZipIndex& index, const ZipEntry& entry, uint64_t max_bytes) {
  const std::string where = "entry \"" + entry.name + "\"";
  if (entry.stored_size > max_bytes) {
    return bad_input(index.path, where + " is " + std::to_string(entry.stored_size) + " bytes, more than the " +
                                     std::to_string(max_bytes) + " allowed");
  }
  std::string bytes(entry.stored_size, '\0');
  auto read = read_exact(fd, entry.data_offset, bytes.size(), bytes.data(), index.path, where);
  if (!read) return read.error();
  return bytes;
}

Result<std::string> read_zip_entry(int fd, const ZipIndex& index, const ZipEntry& entry, uint64_t max_bytes) {
  const std::string where = "entry \"" + entry.name + "\"";
  if (entry.method != 0) return bad_input(index.path, where + " is compressed, and only stored entries are read");
  auto raw = read_zip_raw(fd, index, entry, max_bytes);  // stored: its bytes are the entry's
  if (!raw) return raw.error();
  std::string bytes = std::move(raw).value();
  uLong crc = ::crc32(0L, Z_NULL, 0);
  for (size_t done = 0; done < bytes.size();) {  // zlib takes uInt lengths
    const uInt piece = static_cast<uInt>(std::min<size_t>(bytes.size() - done, 1u << 30));
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + done), piece);
    done += piece;
  }
  if (static_cast<uint32_t>(crc) != entry.crc32) return bad_input(index.path, where + " fails its CRC-32 check");
  return bytes;
}

}  // namespace recis_convert
