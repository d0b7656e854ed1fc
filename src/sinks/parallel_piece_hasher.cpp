#include "recis_convert/sinks/parallel_piece_hasher.h"

#include <algorithm>

#include "recis_convert/common/checksum.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/common/interrupt.h"

namespace recis_convert {

bool ParallelPieceHasher::hashable_from_source(const FileLayout& plan, uint64_t begin, uint64_t end) {
  uint64_t at = plan.preamble.size();
  for (const CopyRange& range : plan.ranges) {
    if (range.by_rows() && !part_span(at, range.output_length(), begin, end).empty()) return false;
    at += range.output_length();
  }
  return true;
}

ParallelPieceHasher::ParallelPieceHasher(int src_fd, const std::string& src_name, const FileLayout& plan,
                                         uint64_t begin, uint64_t end, uint64_t piece_bytes, char* memory,
                                         size_t memory_bytes, unsigned helpers)
    : fd_(src_fd), name_(src_name), plan_(plan), begin_(begin), end_(end), piece_bytes_(piece_bytes),
      count_(PieceChecksum::count(end - begin, piece_bytes)), memory_(memory) {
  const size_t threads = static_cast<size_t>(std::min<uint64_t>(helpers, count_ - 1));
  window_bytes_ = std::max<size_t>(1, memory_bytes / (threads + 1));  // the last window is the calling thread's
  digests_.resize(static_cast<size_t>(count_));
  helpers_.reserve(threads);
  for (size_t slot = 0; slot < threads; ++slot) helpers_.emplace_back([this, slot] { work(slot); });
}

ParallelPieceHasher::~ParallelPieceHasher() {
  abandoned_.store(true);
  for (auto& helper : helpers_) {
    if (helper.joinable()) helper.join();
  }
}

// The piece's output bytes, part by part: the preamble's from memory, each range's read from the source a window
// at a time.
Status ParallelPieceHasher::hash_piece(uint64_t piece, char* window) {
  const uint64_t first = begin_ + piece * piece_bytes_, last = std::min(end_, first + piece_bytes_);
  Checksum checksum;
  const PartSpan preamble = part_span(0, plan_.preamble.size(), first, last);
  if (!preamble.empty()) checksum.update(plan_.preamble.data() + preamble.from, preamble.to - preamble.from);
  uint64_t at = plan_.preamble.size();  // the range's first output byte
  for (const CopyRange& range : plan_.ranges) {
    if (at >= last) break;
    const PartSpan span = part_span(at, range.length, first, last);
    at += range.length;
    for (uint64_t done = span.from; done < span.to;) {
      if (abandoned_.load()) return Ok{};
      if (auto stop = interruption()) return *stop;  // within one window of a signal, as the copy
      const size_t want = static_cast<size_t>(std::min<uint64_t>(window_bytes_, span.to - done));
      // the same read, and the same error, as the copy engine's other hashes of the source
      auto read = read_exact(fd_, range.offset + done, want, window, name_, "the copied bytes");
      if (!read) return read;
      checksum.update(window, want);
      done += want;
    }
  }
  digests_[static_cast<size_t>(piece)] = checksum.digest();
  return Ok{};
}

void ParallelPieceHasher::fail(uint64_t piece, Error error) {
  std::lock_guard<std::mutex> lock(failure_mutex_);
  if (piece < failed_piece_) {
    failed_piece_ = piece;
    failure_ = std::move(error);
  }
  failed_.store(true);
}

void ParallelPieceHasher::work(size_t slot) {
  char* const window = memory_ + slot * window_bytes_;
  for (uint64_t piece = next_.fetch_add(1); piece < count_ && !failed_.load(); piece = next_.fetch_add(1)) {
    auto hashed = hash_piece(piece, window);
    if (!hashed) {
      fail(piece, hashed.error());
      return;
    }
  }
}

Result<std::vector<uint64_t>> ParallelPieceHasher::finish() {
  work(helpers_.size());
  for (auto& helper : helpers_) helper.join();
  if (!failure_) return failure_.error();
  return digests_;
}

}  // namespace recis_convert
