// Small POSIX I/O pieces shared by the readers and writers: a descriptor closed on scope exit, a pread that
// reads exactly what it is asked for, and a write that writes everything (both retry on EINTR).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "recis_convert/common/error.h"

namespace recis_convert {

// A path and what it is, for messages: {"/data/ckpt_200", "the source checkpoint"}.
struct NamedPath {
  std::string path;
  std::string what;
};

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = other.release();
    }
    return *this;
  }
  int get() const { return fd_; }
  // Gives up ownership (e.g. to close it explicitly and check the result).
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// What a file looked like at one stat: "changed while being read" compares two of these, as tar does. A rewrite in
// place keeps the size but moves the modification and change times.
struct FileStamp {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  bool operator==(const FileStamp& other) const {
    return size == other.size && mtime_ns == other.mtime_ns && ctime_ns == other.ctime_ns;
  }
  bool operator!=(const FileStamp& other) const { return !(*this == other); }
};

// The stamp of an open file. A failing fstat is kBadInput naming `path`.
Result<FileStamp> stamp_of(int fd, const std::string& path);
// The stamp of `path` (symlinks followed) if it is a regular file, else nullopt.
std::optional<FileStamp> regular_file_stamp(const std::string& path);

// kBadInput naming `path` when `now` is not `before` (what changed, from what to what), as tar's "file changed as
// we read it".
Status check_unchanged(const FileStamp& before, const FileStamp& now, const std::string& path);

// What a path is when it is not a regular file ("a FIFO", "a directory"...), for messages; "" for a regular file.
std::string file_type_problem(const std::string& path);

// Opens an input file for reading. Only a regular file is an input: a FIFO, socket, device or directory is refused
// by type before it is opened (stat), and again after (fstat: the name may have been swapped meanwhile). The open is
// O_NONBLOCK, cleared afterwards, so that a FIFO put in place between the two cannot block it. kBadInput naming
// `path`.
Result<FileDescriptor> open_input_file(const std::string& path);

// Whether `path` (symlinks followed) is a regular file, with its size in `size` if given; or a directory.
bool is_regular_file(const std::string& path, uint64_t* size = nullptr);
bool is_directory(const std::string& path);

struct SplitPath {
  std::string parent;  // "." for a bare name, "/" at the root
  std::string base;
};

// "a/b/c/" -> {"a/b", "c"}: trailing slashes ignored.
SplitPath split_path(std::string path);

// `path` absolute with symlinks resolved (realpath), or as given when it cannot be resolved.
std::string resolved_path(const std::string& path);

// Input files kept open by path, each opened (open_input_file) on its first use: for readers that come back to the
// same files piece after piece. All are closed together, when this is destroyed or cleared.
class OpenInputs {
 public:
  Result<int> fd(const std::string& path);
  void clear() { files_.clear(); }
  const std::map<std::string, FileDescriptor>& files() const { return files_; }

 private:
  std::map<std::string, FileDescriptor> files_;
};

// Reads `size` bytes at `offset`. A short file is kBadInput naming `file` and `what` ("the header"...).
Status read_exact(int fd, uint64_t offset, size_t size, void* out, const std::string& file, const std::string& what);

// Writes all of `data` at the current position. Failures (ENOSPC, EIO...) are kOutput naming `file`.
Status write_all(int fd, const void* data, size_t size, const std::string& file);

// Writes all of `data` at `offset` (pwrite; the file position is unchanged), failures as write_all.
Status pwrite_all(int fd, const void* data, size_t size, uint64_t offset, const std::string& file);

// A new file (O_EXCL: never one that exists) holding `preamble`, sized to `size` bytes up front: other ranks then
// pwrite inside it, and a short disk fails here, early. Failures are kOutput.
Status create_sized_file(const std::string& path, const std::string& preamble, uint64_t size);
// fsync of a file by its path: any descriptor's fsync makes the file's pages durable, whichever process wrote them.
// kOutput naming the file.
Status fsync_file(const std::string& path);

// The same for a --resume run (`keep`): a file already there with `preamble` and `size` bytes is kept (the byte ranges
// its journal lists are checked before they are adopted, and the rest is written again); any other is made anew.
Status create_sized_file(const std::string& path, const std::string& preamble, uint64_t size, bool keep);

}  // namespace recis_convert
