#include "recis_convert/common/checksum.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <algorithm>
#include <cstdio>
#include <new>

#include "recis_convert/common/file_io.h"
#include "recis_convert/common/activity.h"

namespace recis_convert {

Checksum::Checksum() : state_(XXH3_createState()) {
  if (state_ == nullptr) throw std::bad_alloc();
  XXH3_64bits_reset(state_);
}

Checksum::~Checksum() { XXH3_freeState(state_); }

void Checksum::update(const void* data, size_t size) { XXH3_64bits_update(state_, data, size); }

void Checksum::reset() { XXH3_64bits_reset(state_); }

uint64_t Checksum::digest() const { return XXH3_64bits_digest(state_); }

uint64_t Checksum::of(const void* data, size_t size) { return XXH3_64bits(data, size); }

std::string Checksum::hex(uint64_t digest) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(digest));
  return text;
}

Result<FileDigest> Checksum::of_file(const std::string& path, ExitCode on_error, uint64_t piece_bytes) {
  auto opened = open_input_file(path);
  if (!opened) return Error{on_error, path, opened.error().message};
  FileDescriptor fd = std::move(opened).value();
  PieceChecksum checksum(piece_bytes);
  std::vector<char> buffer(1 << 20);
  FileDigest out;
  while (true) {
    ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    note_activity();
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{on_error, path, std::string("cannot read: ") + std::strerror(errno)};
    if (n == 0) break;
    checksum.update(buffer.data(), static_cast<size_t>(n));
    out.bytes += static_cast<uint64_t>(n);
  }
  out.checksum = checksum.digest();
  return out;
}

void PieceChecksum::update(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    if (piece_bytes_ != 0 && in_piece_ == piece_bytes_) {  // a piece ends only when more bytes follow it
      done_.push_back(current_.digest());
      current_.reset();
      in_piece_ = 0;
    }
    const size_t n = piece_bytes_ == 0 ? size : static_cast<size_t>(std::min<uint64_t>(size, piece_bytes_ - in_piece_));
    current_.update(p, n);
    in_piece_ += n;
    p += n;
    size -= n;
  }
}

std::vector<uint64_t> PieceChecksum::pieces() const {
  std::vector<uint64_t> out = done_;
  out.push_back(current_.digest());
  return out;
}

uint64_t PieceChecksum::combine(const std::vector<uint64_t>& pieces) {
  if (pieces.empty()) return Checksum::of(nullptr, 0);
  if (pieces.size() == 1) return pieces.front();
  std::vector<unsigned char> bytes(pieces.size() * 8);
  for (size_t i = 0; i < pieces.size(); ++i) {
    for (int b = 0; b < 8; ++b) bytes[i * 8 + b] = static_cast<unsigned char>(pieces[i] >> (8 * b));
  }
  return Checksum::of(bytes.data(), bytes.size());
}

uint64_t PieceChecksum::count(uint64_t bytes, uint64_t piece_bytes) {
  if (piece_bytes == 0 || bytes == 0) return 1;
  return (bytes + piece_bytes - 1) / piece_bytes;
}

Result<std::vector<uint64_t>> checksum_file_pieces(const std::string& path, uint64_t piece_bytes, uint64_t first,
                                                   uint64_t count, ExitCode on_error) {
  auto opened = open_input_file(path);
  if (!opened) return Error{on_error, path, opened.error().message};
  FileDescriptor fd = std::move(opened).value();
  const uint64_t span = piece_bytes != 0 ? piece_bytes : UINT64_MAX;  // 0: the whole file is piece 0
  std::vector<char> buffer(static_cast<size_t>(std::min<uint64_t>(span, 1 << 20)));
  std::vector<uint64_t> out;
  for (uint64_t piece = first; piece < first + count; ++piece) {
    Checksum checksum;
    uint64_t offset = piece * piece_bytes, left = span, got_any = 0;
    while (left > 0) {
      ssize_t n = ::pread(fd.get(), buffer.data(), static_cast<size_t>(std::min<uint64_t>(left, buffer.size())),
                          static_cast<off_t>(offset));
      note_activity();
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error{on_error, path, std::string("cannot read: ") + std::strerror(errno)};
      if (n == 0) break;
      checksum.update(buffer.data(), static_cast<size_t>(n));
      offset += static_cast<uint64_t>(n);
      left -= static_cast<uint64_t>(n);
      got_any += static_cast<uint64_t>(n);
    }
    if (got_any == 0 && piece > 0) break;  // past the end (piece 0 of an empty file is the empty piece)
    out.push_back(checksum.digest());
    if (left > 0) break;
  }
  return out;
}

Result<uint64_t> checksum_file_range(const std::string& path, uint64_t offset, uint64_t bytes, ExitCode on_error) {
  auto opened = open_input_file(path);
  if (!opened) return Error{on_error, path, opened.error().message};
  FileDescriptor fd = std::move(opened).value();
  std::vector<char> buffer(static_cast<size_t>(std::min<uint64_t>(std::max<uint64_t>(bytes, 1), 1 << 20)));
  Checksum checksum;
  for (uint64_t done = 0; done < bytes;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buffer.size(), bytes - done));
    auto read = read_exact(fd.get(), offset + done, n, buffer.data(), path, "a journaled region");
    if (!read) return Error{on_error, path, read.error().message};
    checksum.update(buffer.data(), n);
    done += n;
  }
  return checksum.digest();
}

}  // namespace recis_convert
