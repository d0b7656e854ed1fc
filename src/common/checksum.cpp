#include "recis_convert/common/checksum.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "recis_convert/common/file_io.h"

#include <cstdio>
#include <new>

namespace recis_convert {

Checksum::Checksum() : state_(XXH3_createState()) {
  if (state_ == nullptr) throw std::bad_alloc();
  XXH3_64bits_reset(state_);
}

Checksum::~Checksum() { XXH3_freeState(state_); }

void Checksum::update(const void* data, size_t size) { XXH3_64bits_update(state_, data, size); }

uint64_t Checksum::digest() const { return XXH3_64bits_digest(state_); }

uint64_t Checksum::of(const void* data, size_t size) { return XXH3_64bits(data, size); }

std::string Checksum::hex(uint64_t digest) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(digest));
  return text;
}

Result<FileDigest> Checksum::of_file(const std::string& path, ExitCode on_error) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Error{on_error, path, std::string("cannot read: ") + std::strerror(errno)};
  Checksum checksum;
  std::vector<char> buffer(1 << 20);
  FileDigest out;
  while (true) {
    ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{on_error, path, std::string("cannot read: ") + std::strerror(errno)};
    if (n == 0) break;
    checksum.update(buffer.data(), static_cast<size_t>(n));
    out.bytes += static_cast<uint64_t>(n);
  }
  out.checksum = checksum.digest();
  return out;
}

}  // namespace recis_convert
