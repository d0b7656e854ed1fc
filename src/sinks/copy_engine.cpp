#include "recis_convert/sinks/copy_engine.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <vector>

#include "recis_convert/common/checksum.h"
#include "recis_convert/common/fault_injection.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/common/interrupt.h"
#include "recis_convert/sinks/parallel_piece_hasher.h"
#include "recis_convert/transforms/row_selection.h"
#include "recis_convert/sinks/trailing_hasher.h"
#include "recis_convert/sources/column_reader.h"

namespace recis_convert {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

Error read_error(const std::string& src_name, uint64_t offset, int err) {
  if (err == 0) return bad_input(src_name, "file ended at byte " + std::to_string(offset) + ": it shrank while being read");
  return bad_input(src_name, "read failed at byte " + std::to_string(offset) + ": " + errno_text(err));
}

}  // namespace

CopyEngine::CopyEngine(size_t buffer_bytes, CopyPath path, uint64_t piece_bytes, size_t window_bytes)
    : buffer_(std::max<size_t>(buffer_bytes, 4096)), path_(path),
      window_(std::min(buffer_.size(), std::max<size_t>(window_bytes, 4096))), piece_bytes_(piece_bytes) {}

size_t CopyEngine::cache_window_bytes() {
  const long l2 = ::sysconf(_SC_LEVEL2_CACHE_SIZE);
  if (l2 <= 0) return size_t{1} << 20;
  return std::clamp<size_t>(static_cast<size_t>(l2), size_t{256} << 10, size_t{2} << 20);
}

// One window at a time: read, hash, write, while the window is in the cache (issue 19: whole-buffer reads
// hashed from memory; with the window, this loop runs at the speed of the same loop without the hash).
Status CopyEngine::copy_range_buffered(int src_fd, const std::string& src_name, uint64_t offset, uint64_t length,
                                       OutputCursor& out) {
  uint64_t left = length;
  while (left > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(left, window_));
    ssize_t got = ::pread(src_fd, buffer_.data(), want, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return read_error(src_name, offset, got < 0 ? errno : 0);
    auto written = out.write(buffer_.data(), static_cast<size_t>(got));
    if (!written) return written.error();
    offset += static_cast<uint64_t>(got);
    left -= static_cast<uint64_t>(got);
    moved(static_cast<uint64_t>(got));
    fault_point("stream");
    if (auto stop = interruption()) return *stop;  // within one window of a signal
  }
  return Ok{};
}

// kernel-windows: the kernel copies a window, the TrailingHasher reads the same window back from the cache on the
// other core. (A prototype on 2 GiB in tmpfs, best of 8: hashing each 8 MiB chunk after the copy 1.3x the time of
// a bare copy_file_range, trailing 1 MiB windows 1.06x; end to end, the two were within this VM's noise: README,
// "Performance".) kernel-extents: the kernel shares extents, so chunks are buffer-sized, and the hashing, all the
// cost there is, reads the source at its own pace: a window of several pieces is hashed by pieces on helper
// threads and on this one once the copy is done (write_window_by_extents, with `hash` false here); one of a
// single piece, or with rows rewritten, by one TrailingHasher thread. A range of at most two windows is hashed
// on this thread, after its copy: a thread per tiny tensor would cost more than it saves.
Result<bool> CopyEngine::copy_range_kernel(int src_fd, const std::string& src_name, uint64_t offset, uint64_t length,
                                           OutputCursor& out, bool hash) {
  const bool extents = path_ == CopyPath::kKernelExtents;
  const size_t step = extents ? buffer_.size() : window_;
  const bool inline_hash = hash && length <= 2 * static_cast<uint64_t>(window_);
  std::optional<TrailingHasher> hasher;
  const uint64_t start = offset;
  uint64_t left = length;
  while (left > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(left, step));
    loff_t in = static_cast<loff_t>(offset);
    loff_t at = static_cast<loff_t>(out.offset);
    ssize_t n = ::copy_file_range(src_fd, &in, out.fd, &at, chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && offset == start &&
        (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP || errno == EBADF)) {
      fallback_ = std::string("copy_file_range refused (") + errno_text(errno) + ")";
      return false;
    }
    if (n < 0 && (errno == ENOSPC || errno == EDQUOT || errno == EFBIG)) {
      return output_error(out.name, "write failed: " + errno_text(errno));
    }
    if (n < 0) return read_error(src_name, offset, errno);
    if (n == 0) return read_error(src_name, offset, 0);
    if (inline_hash) {
      auto read = read_exact(src_fd, offset, static_cast<uint64_t>(n), buffer_.data(), src_name, "the copied bytes");
      if (!read) return read.error();
      out.checksum.update(buffer_.data(), static_cast<size_t>(n));
    } else if (hash) {
      if (!hasher) hasher.emplace(src_fd, src_name, start, length, buffer_.data(), window_, out.checksum, !extents);
      hasher->copied(offset + static_cast<uint64_t>(n) - start);
    }
    offset += static_cast<uint64_t>(n);
    out.offset += static_cast<uint64_t>(n);
    left -= static_cast<uint64_t>(n);
    moved(static_cast<uint64_t>(n));
    fault_point("stream");
    if (auto stop = interruption()) return *stop;  // within one window (buffer, for extents) of a signal
  }
  if (hasher) {
    auto hashed = hasher->finish();
    if (!hashed) return hashed.error();
  }
  return true;
}

// Reads the rows the part's eviction or delta decision keeps (all without one), from the source file or from the
// range's reader (a merge's rows), and writes them, rewritten by the slot's row transforms when there are any
// (row_transform.h), through the row loop (pipeline/row_loop.h); only the output bytes [begin, end) of the range,
// a piece's share (the rows across its ends are made whole and cut).
Status CopyEngine::rewrite_range(int src_fd, const std::string& src_name, const CopyRange& range, uint64_t begin,
                                 uint64_t end, OutputCursor& out) {
  const uint64_t in_row = range.source_row_bytes(), out_row = range.output_row_bytes();
  if (range.selection && (begin != 0 || end != range.output_length())) {  // the plan never splits these
    return Error{ExitCode::kInternal, src_name, "a range of selected rows cannot be written in pieces"};
  }
  auto opened = RowSelector::open_if(range.selection.get());
  if (!opened) return opened.error();
  std::optional<RowSelector> selector = std::move(opened).value();
  std::optional<ColumnReader> file_rows;  // the source file's own rows, unless the range brings a reader
  RowReader* reader = range.reader.get();
  if (!reader) {
    const std::string what = range.rewrite ? "tensor \"" + range.rewrite->slot().tensor + "\""
                                           : "part " + range.selection->part.table + "/" + range.selection->part.part;
    reader = &file_rows.emplace(std::vector<FileColumn>{FileColumn{src_fd, src_name, what, range.offset, in_row}});
  }
  RowRun run;  // the source rows whose output meets [begin, end) (with a selection: all of them)
  run.first = selector ? 0 : begin / out_row;
  run.end = selector ? range.rows : std::min(range.rows, (end + out_row - 1) / out_row);
  run.slots = {OutputSlot{0, range.rewrite.get()}};
  run.chunk_bytes = window_;
  run.selector = selector ? &*selector : nullptr;
  run.first_row_again = run.first * out_row < begin;  // a row across the window's start: its head is the previous
  uint64_t out_at = run.first * out_row;              // piece's; out_at: where a chunk lands in the range's output
  auto done = row_loop_.run(*reader, run, [&](const RowChunk& chunk) -> Status {
    const uint64_t from = std::max(begin, out_at), to = std::min(end, out_at + chunk.rows * out_row);
    auto written = out.write(chunk.slots[0] + (from - out_at), static_cast<size_t>(to - from));
    if (!written) return written.error();
    out_at += chunk.rows * out_row;
    moved(chunk.source_rows * in_row);
    return Ok{};
  });
  if (!done) return done.error();
  return Ok{};
}

Status CopyEngine::OutputCursor::write(const void* data, size_t size) {
  checksum.update(data, size);
  auto written = pwrite_all(fd, data, size, offset, name);
  if (!written) return written;
  offset += size;
  return Ok{};
}

Result<std::optional<std::vector<uint64_t>>> CopyEngine::write_window_by_extents(
    int src_fd, const std::string& src_name, int dst_fd, const std::string& dst_name, const FileLayout& plan,
    uint64_t begin, uint64_t end) {
  // The helpers hash while this thread copies (a reflink takes moments; a server-side copy may not), and the
  // copy leaves the buffer alone, so it is all theirs until finish(), when this thread hashes too.
  ParallelPieceHasher hasher(src_fd, src_name, plan, begin, end, piece_bytes_, buffer_.data(), buffer_.size(),
                             hashing_helpers_);
  PieceChecksum unused(piece_bytes_);  // the pieces are the hasher's
  OutputCursor out{dst_fd, dst_name, begin, unused};
  const PartSpan preamble = part_span(0, plan.preamble.size(), begin, end);
  if (!preamble.empty()) {
    const size_t size = static_cast<size_t>(preamble.to - preamble.from);
    auto written = pwrite_all(dst_fd, plan.preamble.data() + preamble.from, size, out.offset, dst_name);
    if (!written) return written.error();
    out.offset += size;
  }
  uint64_t at = plan.preamble.size();  // the range's first output byte
  for (const CopyRange& range : plan.ranges) {
    const PartSpan span = part_span(at, range.length, begin, end);
    at += range.length;
    if (span.empty()) continue;
    auto copied = copy_range_kernel(src_fd, src_name, range.offset + span.from, span.to - span.from, out, false);
    if (!copied) return copied.error();
    if (!copied.value()) {
      path_ = CopyPath::kBuffered;  // refused by this kernel or file system: buffered from now on
      return std::optional<std::vector<uint64_t>>{};
    }
  }
  auto pieces = hasher.finish();
  if (!pieces) return pieces.error();
  return std::optional<std::vector<uint64_t>>(std::move(pieces).value());
}

Result<std::vector<uint64_t>> CopyEngine::write_window(int src_fd, const std::string& src_name, int dst_fd,
                                                       const std::string& dst_name, const FileLayout& plan,
                                                       uint64_t begin, uint64_t end) {
  const uint64_t last = std::max(begin, std::min(end, plan.output_bytes()));
  if (path_ == CopyPath::kKernelExtents && piece_bytes_ != 0 && PieceChecksum::count(last - begin, piece_bytes_) > 1 &&
      ParallelPieceHasher::hashable_from_source(plan, begin, last)) {
    auto written = write_window_by_extents(src_fd, src_name, dst_fd, dst_name, plan, begin, last);
    if (!written) return written.error();
    if (written.value()) return *std::move(written).value();
    // the kernel refused: the window is written again below, buffered
  }
  PieceChecksum checksum(piece_bytes_);
  OutputCursor out{dst_fd, dst_name, begin, checksum};
  // Each part of the output (the preamble, then each range) that meets [begin, end), from where they meet.
  const PartSpan preamble = part_span(0, plan.preamble.size(), begin, end);
  if (!preamble.empty()) {
    auto written = out.write(plan.preamble.data() + preamble.from, static_cast<size_t>(preamble.to - preamble.from));
    if (!written) return written.error();
  }
  uint64_t at = plan.preamble.size();  // the range's first output byte
  for (const CopyRange& range : plan.ranges) {
    const PartSpan span = part_span(at, range.output_length(), begin, end);
    at += range.output_length();
    if (span.empty()) continue;
    if (range.by_rows()) {
      auto rewritten = rewrite_range(src_fd, src_name, range, span.from, span.to, out);
      if (!rewritten) return rewritten.error();
      continue;
    }
    if (path_ != CopyPath::kBuffered) {
      auto copied = copy_range_kernel(src_fd, src_name, range.offset + span.from, span.to - span.from, out);
      if (!copied) return copied.error();
      if (copied.value()) continue;
      path_ = CopyPath::kBuffered;  // refused by this kernel or file system: buffered from now on
    }
    auto copied = copy_range_buffered(src_fd, src_name, range.offset + span.from, span.to - span.from, out);
    if (!copied) return copied.error();
  }
  if (out.offset != last) {
    return Error{ExitCode::kInternal, dst_name,
                 "wrote up to byte " + std::to_string(out.offset) + ", not " + std::to_string(last)};
  }
  return checksum.pieces();
}

Result<CopyOutcome> CopyEngine::write(int src_fd, const std::string& src_name, int dst_fd,
                                      const std::string& dst_name, const FileLayout& plan) {
  const uint64_t bytes = plan.output_bytes();
  auto pieces = write_window(src_fd, src_name, dst_fd, dst_name, plan, 0, bytes);
  if (!pieces) return pieces.error();
  return CopyOutcome{bytes, PieceChecksum::combine(pieces.value())};
}

}  // namespace recis_convert
