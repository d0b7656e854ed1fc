#include "recis_convert/common/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace recis_convert {

Status read_exact(int fd, uint64_t offset, size_t size, void* out, const std::string& file, const std::string& what) {
  char* bytes = static_cast<char*>(out);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, bytes + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return bad_input(file, "cannot read " + what + " at byte " + std::to_string(offset + done) + ": " +
                                 std::strerror(errno));
    }
    if (n == 0) {
      return bad_input(file, "cannot read " + what + ": the file ends at byte " + std::to_string(offset + done) +
                                 " (truncated, or it shrank while being read)");
    }
    done += static_cast<size_t>(n);
  }
  return Ok{};
}

bool is_regular_file(const std::string& path, uint64_t* size) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  if (size) *size = static_cast<uint64_t>(st.st_size);
  return true;
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Status write_all(int fd, const void* data, size_t size, const std::string& file) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, bytes, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return output_error(file, std::string("write failed: ") + std::strerror(n < 0 ? errno : EIO));
    bytes += n;
    size -= static_cast<size_t>(n);
  }
  return Ok{};
}

Status pwrite_all(int fd, const void* data, size_t size, uint64_t offset, const std::string& file) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd, bytes, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return output_error(file, std::string("write failed: ") + std::strerror(n < 0 ? errno : EIO));
    bytes += n;
    offset += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
  return Ok{};
}

std::string resolved_path(const std::string& path) {
  char resolved[PATH_MAX];
  return ::realpath(path.c_str(), resolved) ? std::string(resolved) : path;
}

Status create_sized_file(const std::string& path, const std::string& preamble, uint64_t size) {
  FileDescriptor fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
  if (fd.get() < 0) return output_error(path, std::string("cannot create: ") + std::strerror(errno));
  auto written = write_all(fd.get(), preamble.data(), preamble.size(), path);
  if (!written) return written;
  int rc = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(size));
  if (rc == EOPNOTSUPP || rc == EINVAL) rc = ::ftruncate(fd.get(), static_cast<off_t>(size)) == 0 ? 0 : errno;
  if (rc != 0) return output_error(path, std::string("cannot size the file: ") + std::strerror(rc));
  if (::close(fd.release()) != 0) return output_error(path, std::string("close failed: ") + std::strerror(errno));
  return Ok{};
}

}  // namespace recis_convert
