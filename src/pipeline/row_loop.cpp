#include "recis_convert/pipeline/row_loop.h"

#include <algorithm>
#include <cstring>

#include "recis_convert/common/activity.h"
#include "recis_convert/common/fault_injection.h"
#include "recis_convert/common/interrupt.h"
#include "recis_convert/transforms/row_eviction.h"

namespace recis_convert {
namespace {

// Where a chunk's rows go in the loop's buffer: each column as read, then each rewritten slot's output, then the
// writer's scratch, each with room for `rows` rows.
struct ChunkAreas {
  uint64_t rows = 0;
  std::vector<unsigned char*> columns;
  std::vector<unsigned char*> rewritten;  // per output slot; null where the slot is not rewritten
  unsigned char* scratch = nullptr;
};

uint64_t bytes_per_row(const RowReader& reader, const RowRun& run) {
  uint64_t room = run.scratch_row_bytes;
  for (size_t c = 0; c < reader.columns(); ++c) room += reader.row_bytes(c);
  for (const OutputSlot& slot : run.slots) {
    if (slot.rows && slot.rows->rewritten()) room += slot.rows->output().row_bytes();
  }
  return std::max<uint64_t>(room, 1);
}

ChunkAreas lay_out_chunk(std::vector<char>& buffer, const RowReader& reader, const RowRun& run, uint64_t rows) {
  ChunkAreas areas;
  areas.rows = rows;
  unsigned char* at = reinterpret_cast<unsigned char*>(buffer.data());
  for (size_t c = 0; c < reader.columns(); ++c) {
    areas.columns.push_back(at);
    at += rows * reader.row_bytes(c);
  }
  for (const OutputSlot& slot : run.slots) {
    const bool rewritten = slot.rows && slot.rows->rewritten();
    areas.rewritten.push_back(rewritten ? at : nullptr);
    if (rewritten) at += rows * slot.rows->output().row_bytes();
  }
  areas.scratch = run.scratch_row_bytes ? at : nullptr;
  return areas;
}

}  // namespace

Result<uint64_t> RowLoop::run(RowReader& reader, const RowRun& run,
                              const std::function<Status(const RowChunk&)>& write) {
  const uint64_t room = bytes_per_row(reader, run);
  const size_t chunk_bytes = run.chunk_bytes ? std::min(run.chunk_bytes, buffer_.size()) : buffer_.size();
  uint64_t capacity = std::max<uint64_t>(1, chunk_bytes / room);  // rows per chunk
  if (run.one_chunk) capacity = std::max<uint64_t>(capacity, run.kept_at_most.value_or(run.end - run.first));
  if (buffer_.size() < capacity * room) buffer_.resize(capacity * room);
  const ChunkAreas areas = lay_out_chunk(buffer_, reader, run, capacity);
  std::vector<uint64_t> in_row(reader.columns());
  for (size_t c = 0; c < in_row.size(); ++c) in_row[c] = reader.row_bytes(c);
  std::vector<unsigned char*> into(in_row.size());
  RowChunk out;
  out.slots.resize(run.slots.size());
  out.scratch = areas.scratch;

  uint64_t kept_total = 0, next = run.first;
  const auto wanted = [&] { return !run.kept_at_most || kept_total < *run.kept_at_most; };
  while (next < run.end && wanted()) {
    // read: the chunk's kept rows, by one read of up to `capacity` source rows, or, for one chunk, as many reads
    // as it takes (each of at most the rows still wanted, so that it never keeps more)
    const uint64_t first = next;
    uint64_t have = 0;
    do {
      uint64_t n = std::min(capacity - have, run.end - next);
      if (run.kept_at_most) n = std::min(n, *run.kept_at_most - kept_total - have);
      if (run.selector) n = std::min(n, run.selector->chunk_rows());
      for (size_t c = 0; c < in_row.size(); ++c) into[c] = areas.columns[c] + have * in_row[c];
      uint64_t kept = n;
      if (run.selector) {  // decided first: only the kept rows are read
        auto decided = run.selector->kept_rows(next, n, kept_);
        if (!decided) return decided.error();
        kept = kept_.size();
      }
      auto read = reader.read(next, n, run.selector ? &kept_ : nullptr, into.data());
      if (!read) return read.error();
      if (run.filter) {  // decided on the rows read: every column keeps the same rows
        keep_.resize(n);
        kept = run.filter->decide(into[run.filter->column], n, keep_.data());
        for (size_t c = 0; c < in_row.size(); ++c) compact_rows(into[c], in_row[c], keep_.data(), n);
      }
      have += kept;
      next += n;
    } while (run.one_chunk && next < run.end && have < capacity &&
             (!run.kept_at_most || kept_total + have < *run.kept_at_most));

    // rewrite: after selection, a message's row number is the first of the chunk's source rows
    for (size_t s = 0; s < run.slots.size(); ++s) {
      const OutputSlot& slot = run.slots[s];
      unsigned char* const rows_in = areas.columns[slot.column];
      out.slots[s] = rows_in;
      unsigned char* const rows_out = areas.rewritten[s];
      if (!rows_out) continue;
      Status done = Ok{};
      if (run.first_row_again && first == run.first && have > 0) {  // its head is the previous piece's
        done = slot.rows->apply(rows_in, 1, first, rows_out, RowVisit::kAgain);
        if (done && have > 1) {
          done = slot.rows->apply(rows_in + in_row[slot.column], have - 1, first + 1,
                                  rows_out + slot.rows->output().row_bytes());
        }
      } else {
        done = slot.rows->apply(rows_in, have, first, rows_out);
      }
      if (!done) return done.error();
      out.slots[s] = rows_out;
    }
    // route
    out.targets = nullptr;
    if (run.route) {
      targets_.resize(have);
      const unsigned char* ids = areas.columns[*run.id_column];
      for (uint64_t r = 0; r < have; ++r) {
        int64_t id;
        std::memcpy(&id, ids + r * sizeof id, sizeof id);
        targets_[r] = (*run.route)(id);
      }
      out.targets = targets_.data();
    }
    // write
    out.first = first;
    out.source_rows = next - first;
    out.rows = have;
    auto written = write(out);
    if (!written) return written.error();
    kept_total += have;
    note_activity();
    if (!run.counting) fault_point("stream");
    if (auto stop = interruption()) return *stop;
    if (run.one_chunk) break;
  }
  return next;
}

Result<RowLoop::Counted> RowLoop::count_kept_rows(RowReader& reader, RowRun run, uint32_t targets) {
  Counted out;
  out.per_target.assign(targets, 0);
  run.slots.clear();
  run.counting = true;
  auto done = this->run(reader, run, [&](const RowChunk& chunk) -> Status {
    out.kept += chunk.rows;
    if (chunk.targets) {
      for (uint64_t r = 0; r < chunk.rows; ++r) ++out.per_target[chunk.targets[r]];
    }
    return Ok{};
  });
  if (!done) return done.error();
  return out;
}

}  // namespace recis_convert
