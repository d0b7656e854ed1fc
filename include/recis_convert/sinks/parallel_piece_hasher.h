// Hashes the pieces of an output file from the source on several threads, a whole piece each (issue 19). Where
// copy_file_range shares extents (XFS and btrfs reflink), the kernel copy moves no data, and hashing the source
// is the whole cost of copying a file. A file's pieces (checksum.h, --chunk-mib) are hashed independently, so the
// rank's CPUs hash them side by side: each piece's bytes are the plan's preamble and source ranges that it covers.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/sinks/file_layout.h"

namespace recis_convert {

class ParallelPieceHasher {
 public:
  // Hashes the output bytes [begin, end) of `plan` in pieces of piece_bytes (> 0; begin a multiple of it), reading
  // them from src_fd; the plan must be hashable_from_source() there. `helpers` threads start on the pieces at once;
  // the calling thread joins them in finish(). `memory` (the caller's, which it leaves alone until finish()
  // returns) is shared out as one window per thread.
  ParallelPieceHasher(int src_fd, const std::string& src_name, const FileLayout& plan, uint64_t begin, uint64_t end,
                      uint64_t piece_bytes, char* memory, size_t memory_bytes, unsigned helpers);
  ~ParallelPieceHasher();  // stops the helpers after their current window and joins them (an abandoned copy)
  ParallelPieceHasher(const ParallelPieceHasher&) = delete;
  ParallelPieceHasher& operator=(const ParallelPieceHasher&) = delete;

  // Hashes pieces on the calling thread too until none is left, waits for the helpers, and returns the pieces'
  // checksums in order (as PieceChecksum::pieces() would), or the first failure in piece order (a read error,
  // kBadInput naming the file) or an interruption.
  Result<std::vector<uint64_t>> finish();

  // Whether the output bytes [begin, end) are all preamble and source bytes copied unchanged (no rows rewritten
  // or selected), so that a piece can be hashed from the source alone.
  static bool hashable_from_source(const FileLayout& plan, uint64_t begin, uint64_t end);

 private:
  void work(size_t slot);  // pieces, one at a time, until none is left or one failed
  Status hash_piece(uint64_t piece, char* window);
  void fail(uint64_t piece, Error error);  // keeps the failure of the first piece

  const int fd_;
  const std::string& name_;
  const FileLayout& plan_;
  const uint64_t begin_, end_, piece_bytes_, count_;
  char* const memory_;
  size_t window_bytes_ = 0;

  std::vector<uint64_t> digests_;  // each written by the thread that took the piece
  std::atomic<uint64_t> next_{0};  // the next piece to take
  // After a failure no piece is taken, but those taken are finished: they all come before the failed one (pieces
  // are taken in order), so the failure reported is the first in piece order, the same in every run.
  std::atomic<bool> failed_{false};
  std::atomic<bool> abandoned_{false};  // the destructor's: stop within a window
  std::mutex failure_mutex_;
  uint64_t failed_piece_ = UINT64_MAX;
  Status failure_ = Ok{};
  std::vector<std::thread> helpers_;  // last: started once the members above exist
};

}  // namespace recis_convert
