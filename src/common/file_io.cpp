#include "recis_convert/common/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "recis_convert/common/activity.h"

namespace recis_convert {

Status read_exact(int fd, uint64_t offset, size_t size, void* out, const std::string& file, const std::string& what) {
  char* bytes = static_cast<char*>(out);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, bytes + done, size - done, static_cast<off_t>(offset + done));
    note_activity();
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

namespace {

const char* type_name(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISDIR(mode)) return "a directory";
  return "not a regular file";
}

std::string not_regular(mode_t mode) { return std::string("is ") + type_name(mode) + ", not a regular file"; }

int64_t nanoseconds(const struct timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec; }

FileStamp stamp_from(const struct stat& st) {
  return FileStamp{static_cast<uint64_t>(st.st_size), nanoseconds(st.st_mtim), nanoseconds(st.st_ctim)};
}

}  // namespace

Result<FileStamp> stamp_of(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return bad_input(path, std::string("cannot stat: ") + std::strerror(errno));
  return stamp_from(st);
}

std::optional<FileStamp> regular_file_stamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return stamp_from(st);
}

Status check_unchanged(const FileStamp& before, const FileStamp& now, const std::string& path) {
  if (before.size != now.size) {
    return bad_input(path, "file changed as we read it: its size went from " + std::to_string(before.size) + " to " +
                               std::to_string(now.size) + " bytes");
  }
  if (before.mtime_ns != now.mtime_ns || before.ctime_ns != now.ctime_ns) {
    return bad_input(path, std::string("file changed as we read it: its ") +
                               (before.mtime_ns != now.mtime_ns ? "modification time moved (rewritten in place?)"
                                                                : "change time moved (rewritten, deleted or relinked?)"));
  }
  return Ok{};
}

std::string file_type_problem(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return "";
  return not_regular(st.st_mode);
}

Result<FileDescriptor> open_input_file(const std::string& path) {
  const std::string problem = file_type_problem(path);
  if (!problem.empty()) return bad_input(path, problem);
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) return bad_input(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return bad_input(path, std::string("cannot stat: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return bad_input(path, not_regular(st.st_mode));
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return bad_input(path, std::string("cannot clear O_NONBLOCK: ") + std::strerror(errno));
  }
  return Result<FileDescriptor>(std::move(fd));
}

Result<int> OpenInputs::fd(const std::string& path) {
  auto it = files_.find(path);
  if (it == files_.end()) {
    auto opened = open_input_file(path);
    if (!opened) return opened.error();
    it = files_.emplace(path, std::move(opened).value()).first;
  }
  return it->second.get();
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

SplitPath split_path(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

Status write_all(int fd, const void* data, size_t size, const std::string& file) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, bytes, size);
    note_activity();
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
    note_activity();
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

Status fsync_file(const std::string& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) return output_error(path, std::string("fsync failed: ") + std::strerror(errno));
  return Ok{};
}

Status create_sized_file(const std::string& path, const std::string& preamble, uint64_t size, bool keep) {
  if (keep) {
    FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    struct stat st {};
    if (fd.get() >= 0 && ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == size &&
        size >= preamble.size()) {
      std::string head(preamble.size(), '\0');
      auto read = read_exact(fd.get(), 0, head.size(), head.data(), path, "the header");
      if (read && head == preamble) return Ok{};
    }
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return output_error(path, std::string("cannot remove: ") + std::strerror(errno));
  }
  return create_sized_file(path, preamble, size);
}

}  // namespace recis_convert
