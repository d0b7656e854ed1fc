// The copy engine: writes a FileLayout (new preamble, then source byte ranges) into an output file with one
// buffer of fixed size, whatever the file size, and checksums every output byte on the way.
//
// Bytes that pass unchanged take the path copy_choice.h chooses per file system; each is hashed while it is in the
// CPU cache, so the checksum adds no pass over memory (issue 19):
// - kernel-windows: copy_file_range in cache-sized windows; a TrailingHasher re-reads each window just copied;
// - kernel-extents: copy_file_range in buffer-sized chunks (extents are shared, not copied); the source is
//   hashed alongside, whole pieces side by side on the rank's CPUs (ParallelPieceHasher);
// - buffered: pread a window, hash it, pwrite it.
// When the kernel refuses copy_file_range (EXDEV, EINVAL, ENOSYS, EOPNOTSUPP: other file systems, old kernels),
// the engine falls back to buffered for the rest of the run and says why (fallback()). Rows that a transform
// rewrites or a selection drops are read by rows into the buffer, whatever the path.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/common/activity.h"
#include "recis_convert/common/checksum.h"
#include "recis_convert/common/error.h"
#include "recis_convert/pipeline/row_loop.h"
#include "recis_convert/sinks/copy_choice.h"
#include "recis_convert/sinks/file_layout.h"

namespace recis_convert {

struct CopyOutcome {
  uint64_t bytes_written = 0;
  uint64_t checksum = 0;  // of the whole output file, in pieces (checksum.h)
};

class CopyEngine {
 public:
  // piece_bytes: the checksum's pieces (checksum.h; the export's --chunk-mib). window_bytes: the cache-sized
  // window of the kernel-windows and buffered paths (at most the buffer).
  CopyEngine(size_t buffer_bytes, CopyPath path, uint64_t piece_bytes, size_t window_bytes = cache_window_bytes());
  CopyEngine(const CopyEngine&) = delete;  // its row loop holds its buffer
  CopyEngine& operator=(const CopyEngine&) = delete;

  // This core's L2 cache, within [256 KiB, 2 MiB] (1 MiB where the system does not say): a window that stays in
  // cache from its read to its hash and its write.
  static size_t cache_window_bytes();

  // Writes plan.preamble then every plan range of src_fd to dst_fd (an empty file open for writing).
  // Read failures and a source shorter than planned are kBadInput naming src_name; write failures
  // (ENOSPC, EIO...) are kOutput naming dst_name.
  Result<CopyOutcome> write(int src_fd, const std::string& src_name, int dst_fd, const std::string& dst_name,
                            const FileLayout& plan);

  // Writes only the output bytes [begin, end) of the plan, at their offsets in dst_fd: one rank's piece of a file
  // that several ranks write (piece_plan.h). `begin` is a multiple of the piece size; returns the checksums of the
  // pieces from begin / piece_bytes on (PieceChecksum), errors as write().
  Result<std::vector<uint64_t>> write_window(int src_fd, const std::string& src_name, int dst_fd,
                                             const std::string& dst_name, const FileLayout& plan, uint64_t begin,
                                             uint64_t end);

  // The CPUs that hash the source on the kernel-extents path (usable_cpus()): one thread each, the copying one
  // among them once its copy is done; one CPU still gets a hashing thread beside the copy. Default 1.
  void set_hashing_cpus(unsigned cpus) { hashing_helpers_ = cpus > 1 ? cpus - 1 : 1; }

  // Called after every chunk with the number of source bytes it moved (for progress lines); may be empty.
  void set_progress_hook(std::function<void(uint64_t)> hook) { progress_ = std::move(hook); }

  // The path the engine takes now: the constructor's until the kernel refuses copy_file_range, buffered after.
  CopyPath path() const { return path_; }
  // Why the engine left the kernel path ("" while it has not): "copy_file_range refused (ERRNO TEXT)".
  const std::string& fallback() const { return fallback_; }

  uint64_t piece_bytes() const { return piece_bytes_; }
  // Source bytes moved so far, over every write (the preambles aside): a piece's bytes read.
  uint64_t source_bytes_moved() const { return moved_; }

 private:
  // Where the next output byte goes (pwrite: several ranks may write one file), checksummed on the way.
  struct OutputCursor {
    int fd;
    const std::string& name;
    uint64_t offset;
    PieceChecksum& checksum;
    Status write(const void* data, size_t size);
  };
  Status copy_range_buffered(int src_fd, const std::string& src_name, uint64_t offset, uint64_t length,
                             OutputCursor& out);
  // Returns false (and copies nothing) when the kernel refuses copy_file_range for these files. With `hash`
  // false the bytes are left to a ParallelPieceHasher and the cursor's checksum is not touched.
  Result<bool> copy_range_kernel(int src_fd, const std::string& src_name, uint64_t offset, uint64_t length,
                                 OutputCursor& out, bool hash = true);
  // The kernel-extents path of write_window() for a window of two pieces or more, all preamble and unchanged
  // ranges: copies it, and hashes its pieces on the rank's CPUs meanwhile. Returns no value (having written
  // nothing that counts) when the kernel refuses copy_file_range; the caller then goes on buffered.
  Result<std::optional<std::vector<uint64_t>>> write_window_by_extents(int src_fd, const std::string& src_name,
                                                                       int dst_fd, const std::string& dst_name,
                                                                       const FileLayout& plan, uint64_t begin,
                                                                       uint64_t end);
  // Output bytes [begin, end) of the range (relative to its first output byte).
  Status rewrite_range(int src_fd, const std::string& src_name, const CopyRange& range, uint64_t begin, uint64_t end,
                       OutputCursor& out);

  std::vector<char> buffer_;
  // rewrite_range's rows, in buffer_; one loop for every range, so that its per-chunk vectors are allocated once,
  // not mapped and faulted in again per slot
  RowLoop row_loop_{buffer_};
  CopyPath path_;
  std::string fallback_;
  size_t window_;
  uint64_t piece_bytes_;
  unsigned hashing_helpers_ = 1;
  uint64_t moved_ = 0;
  void moved(uint64_t n) {
    moved_ += n;
    note_activity();
    if (progress_) progress_(n);
  }
  std::function<void(uint64_t)> progress_;
};

}  // namespace recis_convert
