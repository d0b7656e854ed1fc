#include "recis_convert/transforms/kept_row_bitmap.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace recis_convert {
namespace {

// Eight decisions (bytes 0 or 1, row i in byte i) as one byte with row i in bit i: the multiply moves byte i's low
// bit to bit 56 + i, and no two partial products overlap below bit 64 (checked for all 256 patterns in Python).
unsigned char pack8(const unsigned char* keep) {
  uint64_t x;
  std::memcpy(&x, keep, sizeof x);  // little-endian host
  return static_cast<unsigned char>((x * 0x0102040810204080ull) >> 56);
}

// The inverse: byte b as eight decisions, from a table built once.
struct UnpackTable {
  uint64_t bytes[256];
  UnpackTable() {
    for (unsigned b = 0; b < 256; ++b) {
      bytes[b] = 0;
      for (unsigned i = 0; i < 8; ++i) bytes[b] |= uint64_t{(b >> i) & 1u} << (8 * i);
    }
  }
};
const UnpackTable kUnpack;

}  // namespace

Result<KeptRowBitmapWriter> KeptRowBitmapWriter::create(const std::string& path) {
  KeptRowBitmapWriter w;
  w.path_ = path;
  w.fd_ = std::make_unique<FileDescriptor>(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (w.fd_->get() < 0) return output_error(path, std::string("cannot create: ") + std::strerror(errno));
  return w;
}

Status KeptRowBitmapWriter::append(const unsigned char* keep, uint64_t n) {
  uint64_t i = 0;
  while (i < n) {
    if (rows_ % 8 == 0 && bytes_.size() >= kFlushBytes) {  // only whole bytes are pending here
      auto written = write_all(fd_->get(), bytes_.data(), bytes_.size(), path_);
      if (!written) return written;
      bytes_.clear();
    }
    if (rows_ % 8 == 0 && n - i >= 8) {  // a whole byte at once: the common case
      bytes_.push_back(pack8(keep + i));
      i += 8;
      rows_ += 8;
      continue;
    }
    if (rows_ % 8 == 0) bytes_.push_back(0);
    bytes_.back() |= static_cast<unsigned char>((keep[i] & 1u) << (rows_ % 8));
    ++i;
    ++rows_;
  }
  return Ok{};
}

Status KeptRowBitmapWriter::finish() {
  auto written = write_all(fd_->get(), bytes_.data(), bytes_.size(), path_);
  if (!written) return written;
  bytes_.clear();
  if (::close(fd_->release()) != 0) return output_error(path_, std::string("close failed: ") + std::strerror(errno));
  return Ok{};
}

Result<KeptRowBitmapReader> KeptRowBitmapReader::open(const std::string& path, uint64_t rows) {
  KeptRowBitmapReader r;
  r.path_ = path;
  r.rows_ = rows;
  r.fd_ = std::make_unique<FileDescriptor>(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (r.fd_->get() < 0) return output_error(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(r.fd_->get(), &st) != 0 || static_cast<uint64_t>(st.st_size) != (rows + 7) / 8) {
    return output_error(path, "the kept-row bitmap of " + std::to_string(rows) + " rows has the wrong size");
  }
  return r;
}

Status KeptRowBitmapReader::read_bytes(uint64_t first, uint64_t n) {
  if (first + n > rows_) {
    return Error{ExitCode::kInternal, path_, "rows " + std::to_string(first) + "+" + std::to_string(n) +
                                                 " are beyond the bitmap's " + std::to_string(rows_)};
  }
  const uint64_t begin = first / 8, end = (first + n + 7) / 8;
  bytes_.resize(end - begin);
  return read_exact(fd_->get(), begin, bytes_.size(), bytes_.data(), path_, "the kept-row bitmap");
}

Status KeptRowBitmapReader::read_kept(uint64_t first, uint64_t n, std::vector<uint32_t>& kept) {
  kept.clear();
  if (n == 0) return Ok{};
  auto read = read_bytes(first, n);
  if (!read) return read;
  const uint64_t shift = first % 8;  // row first is bit `shift` of bytes_[0]
  bytes_.front() &= static_cast<unsigned char>(0xffu << shift);  // the rows before `first`
  const uint64_t tail = (shift + n) % 8;
  if (tail != 0) bytes_.back() &= static_cast<unsigned char>((1u << tail) - 1);  // the rows after the last
  kept.reserve(n);
  for (uint64_t b = 0; b < bytes_.size(); ++b) {
    for (unsigned bits = bytes_[b]; bits != 0; bits &= bits - 1) {
      kept.push_back(static_cast<uint32_t>(b * 8 + static_cast<uint64_t>(__builtin_ctz(bits)) - shift));
    }
  }
  return Ok{};
}

Result<uint64_t> KeptRowBitmapReader::read(uint64_t first, uint64_t n, unsigned char* keep) {
  if (n == 0) return uint64_t{0};
  auto read = read_bytes(first, n);
  if (!read) return read.error();
  uint64_t kept = 0;
  const uint64_t shift = first % 8;
  uint64_t i = 0;
  for (; i < n && (shift + i) % 8 != 0; ++i) keep[i] = (bytes_[0] >> (shift + i)) & 1u;  // up to the first whole byte
  for (uint64_t j = 0; j < i; ++j) kept += keep[j];
  for (; i + 8 <= n; i += 8) {
    const unsigned char byte = bytes_[(shift + i) / 8];
    std::memcpy(keep + i, &kUnpack.bytes[byte], 8);
    kept += static_cast<uint64_t>(__builtin_popcount(byte));
  }
  for (; i < n; ++i) {
    keep[i] = (bytes_[(shift + i) / 8] >> ((shift + i) % 8)) & 1u;
    kept += keep[i];
  }
  return kept;
}

std::string kept_row_bitmap_dir(const std::string& staging_dir) {
  return staging_dir.empty() ? std::string() : staging_dir + "/.kept-rows";
}

}  // namespace recis_convert
