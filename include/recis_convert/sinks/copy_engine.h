// The copy engine: writes a FileLayout (new preamble, then source byte ranges) into an output file with one
// buffer of fixed size, whatever the file size, and checksums every output byte on the way.
//
// Kernel copy (copy_file_range) moves the bytes without passing them through user space; the checksum then
// re-reads each chunk of the source from the page cache, on a helper thread, while the kernel copies the next
// chunk (one hash in flight at a time, so memory stays one buffer). When the kernel refuses
// (EXDEV, EINVAL, ENOSYS, EOPNOTSUPP: other filesystems, old kernels), the engine falls back to a buffered
// pread/write loop for the rest of the run.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/sinks/file_layout.h"

namespace recis_convert {

enum class CopyMethod { kAuto, kKernel, kBuffered };

struct CopyOutcome {
  uint64_t bytes_written = 0;
  uint64_t checksum = 0;  // XXH3-64 of the whole output file
};

class CopyEngine {
 public:
  CopyEngine(size_t buffer_bytes, CopyMethod method);

  // Writes plan.preamble then every plan range of src_fd to dst_fd (an empty file open for writing).
  // Read failures and a source shorter than planned are kBadInput naming src_name; write failures
  // (ENOSPC, EIO...) are kOutput naming dst_name.
  Result<CopyOutcome> write(int src_fd, const std::string& src_name, int dst_fd, const std::string& dst_name,
                            const FileLayout& plan);

  // Called after every chunk with the number of source bytes it moved (for progress lines); may be empty.
  void set_progress_hook(std::function<void(uint64_t)> hook) { progress_ = std::move(hook); }

  // Whether the last write used copy_file_range (for the run record and tests).
  bool kernel_copy_active() const { return use_kernel_; }

 private:
  Status copy_range_buffered(int src_fd, const std::string& src_name, int dst_fd, const std::string& dst_name,
                             CopyRange range, class Checksum& checksum);
  Status rewrite_range(int src_fd, const std::string& src_name, int dst_fd, const std::string& dst_name,
                       const CopyRange& range, class Checksum& checksum);
  Result<bool> copy_range_kernel(int src_fd, const std::string& src_name, int dst_fd, const std::string& dst_name,
                                 CopyRange range, class Checksum& checksum);

  std::vector<char> buffer_;
  std::vector<uint32_t> kept_rows_;  // a chunk's kept rows (rewrite_range); kept across ranges, so its memory is
                                     // allocated once, not mapped and faulted in again per slot
  bool use_kernel_;
  std::function<void(uint64_t)> progress_;
};

}  // namespace recis_convert
