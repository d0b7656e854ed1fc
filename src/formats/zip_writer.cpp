#include "recis_convert/formats/zip_writer.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace recis_convert {
namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfCentralDirectory = 0x06054b50;
constexpr uint16_t kPaddingField = 0x4246;  // "FB", the extra field torch pads with
constexpr uint16_t kVersion = 20;

void put16(std::string& out, uint64_t v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
}
void put32(std::string& out, uint64_t v) {
  put16(out, v & 0xffff);
  put16(out, (v >> 16) & 0xffff);
}

}  // namespace

Result<ZipWriter> ZipWriter::create(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return output_error(path, std::string("cannot create: ") + std::strerror(errno));
  return ZipWriter(path, FileDescriptor(fd));
}

Status ZipWriter::append(std::string_view bytes) {
  if (offset_ + bytes.size() > kMaxZipWriterBytes) {
    return output_error(path_, "would pass 4 GiB, which needs zip64 (not written here)");
  }
  auto wrote = write_all(fd_.get(), bytes.data(), bytes.size(), path_);
  if (!wrote) return wrote;
  offset_ += bytes.size();
  return Ok{};
}

Status ZipWriter::add(const std::string& name, std::string_view data) {
  const auto crc = ::crc32(::crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(data.data()),
                           static_cast<uInt>(std::min<size_t>(data.size(), kMaxZipWriterBytes)));
  return add_raw(name, 0, static_cast<uint32_t>(crc), data.size(), data);
}

Status ZipWriter::add_raw(const std::string& name, uint16_t method, uint32_t crc32, uint64_t size,
                          std::string_view stored) {
  if (fd_.get() < 0) return output_error(path_, "entry " + name + " added after the archive was finished");
  if (name.size() > 0xFFFF) return output_error(path_, "entry name longer than 65535 bytes");
  if (offset_ + stored.size() > kMaxZipWriterBytes || size > kMaxZipWriterBytes) {
    return output_error(path_, "would pass 4 GiB, which needs zip64 (not written here)");
  }
  Written w;
  w.name = name;
  w.method = method;
  w.crc32 = crc32;
  w.stored_size = static_cast<uint32_t>(stored.size());
  w.size = static_cast<uint32_t>(size);
  w.header_offset = static_cast<uint32_t>(offset_);
  // the data starts after the header, the name and a padding field of 4 + pad bytes, on a 64-byte boundary
  const uint64_t unpadded = offset_ + 30 + name.size() + 4;
  const uint64_t pad = (kZipDataAlignment - unpadded % kZipDataAlignment) % kZipDataAlignment;
  std::string header;
  put32(header, kLocalHeader);
  put16(header, kVersion);
  put16(header, 0);  // flags
  put16(header, w.method);
  put16(header, 0);  // time
  put16(header, 0);  // date: torch writes none either
  put32(header, w.crc32);
  put32(header, w.stored_size);
  put32(header, w.size);
  put16(header, name.size());
  put16(header, 4 + pad);
  header += name;
  put16(header, kPaddingField);
  put16(header, pad);
  header.append(pad, 'Z');
  auto wrote = append(header);
  if (!wrote) return wrote;
  wrote = append(stored);
  if (!wrote) return wrote;
  written_.push_back(std::move(w));
  return Ok{};
}

Status ZipWriter::finish() {
  const uint64_t directory_offset = offset_;
  std::string directory;
  for (const Written& w : written_) {
    put32(directory, kCentralHeader);
    put16(directory, kVersion);  // made by
    put16(directory, kVersion);  // needed
    put16(directory, 0);  // flags
    put16(directory, w.method);
    put16(directory, 0);  // time
    put16(directory, 0);  // date
    put32(directory, w.crc32);
    put32(directory, w.stored_size);
    put32(directory, w.size);
    put16(directory, w.name.size());
    put16(directory, 0);  // extra
    put16(directory, 0);  // comment
    put16(directory, 0);  // disk
    put16(directory, 0);  // internal attributes
    put32(directory, 0);  // external attributes
    put32(directory, w.header_offset);
    directory += w.name;
  }
  if (written_.size() > 0xFFFF) return output_error(path_, "more than 65535 entries need zip64 (not written here)");
  std::string end;
  put32(end, kEndOfCentralDirectory);
  put16(end, 0);
  put16(end, 0);
  put16(end, written_.size());
  put16(end, written_.size());
  put32(end, directory.size());
  put32(end, directory_offset);
  put16(end, 0);
  auto wrote = append(directory + end);
  if (!wrote) return wrote;
  const int fd = fd_.release();
  if (::close(fd) != 0) return output_error(path_, std::string("cannot close: ") + std::strerror(errno));
  return Ok{};
}

}  // namespace recis_convert
