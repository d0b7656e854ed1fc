// One run at a time per export location. Two runs publishing the same export directory (two overlapping cron
// invocations, say) would each stage a whole export and the later rename would win; worse, `--overwrite` would
// delete what the other just published. So the run holds an fcntl lock on "<parent>/.<export-name>.recis-lock"
// from before it stages until it has published or given up, and a second run is refused at once (exit 4, naming
// the holder) instead of waiting behind it, which would pile cron jobs up. The kernel (or the file system's lock
// manager, on NFS and Lustre) drops the lock of a process that dies, so a killed run never blocks the next one.
// The file holds "<host> <pid> <start time>" for the message, and is removed when the lock is released.
#pragma once

#include <string>

#include "recis_convert/common/error.h"
#include "recis_convert/common/file_io.h"

namespace recis_convert {

class ExportLock {
 public:
  // Takes the lock of `export_dir` (its parent must exist). Busy: kOutput naming the holder.
  static Result<ExportLock> acquire(const std::string& export_dir);

  ExportLock(ExportLock&&) noexcept = default;
  ExportLock& operator=(ExportLock&&) = delete;
  ExportLock(const ExportLock&) = delete;
  ~ExportLock();

  const std::string& path() const { return path_; }  // the lock file

 private:
  ExportLock(std::string path, FileDescriptor fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  FileDescriptor fd_;
};

}  // namespace recis_convert
