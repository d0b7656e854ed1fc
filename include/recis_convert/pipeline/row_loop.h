// The one row loop. Every row feature (eviction, deltas, serving dtypes, --reshard) and every sink that writes
// rows (a safetensors file or a piece of one, the resharded files, model.h5, HugeCTR tables) runs rows through
// it, a chunk at a time:
//   select   which rows stay: decided before they are read (RowSelector: eviction and deltas, from the part's
//            decision columns or the count pass's bitmap), or on the rows read (a RowFilter on one column);
//   read     the kept rows of every column of the work item (the source's RowReader);
//   rewrite  each output slot's rows through its row transforms (SlotRows: serving dtypes);
//   route    each row to its target part by its id (--reshard: PartOfIdTable);
//   write    the chunk (the sink's writer).
// Bytes that pass unchanged, with no row dropped, never come here: the copy engine copies them whole. Memory is the
// buffer the caller lends (grown only for a single row wider than it, or for a chunk the caller sized) and a chunk
// of the decision columns.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/plan/slices.h"
#include "recis_convert/transforms/row_selection.h"
#include "recis_convert/sources/row_reader.h"
#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

// An output slot: a column of the reader, as its row transforms leave it (rows null: as read).
struct OutputSlot {
  size_t column = 0;
  const SlotRows* rows = nullptr;
};

// A decision on rows once they are read, from one of their columns: keep[i] for `n` rows, returns how many stay.
// (HugeCTR's --evict-l2-below: the vectors are read anyway, every slot with them.)
struct RowFilter {
  size_t column = 0;
  std::function<uint64_t(const unsigned char* rows, uint64_t n, unsigned char* keep)> decide;
};

// What the loop does with the source rows [first, end) of one work item.
struct RowRun {
  uint64_t first = 0, end = 0;
  std::vector<OutputSlot> slots;
  RowSelector* selector = nullptr;   // the part's eviction or delta decisions, made before reading
  const RowFilter* filter = nullptr;  // or decisions on the rows read; neither: every row stays
  std::optional<size_t> id_column;       // with route: the column of the rows' int64 ids
  const PartOfIdTable* route = nullptr;  // --reshard: each kept row's target part, from its id
  bool first_row_again = false;  // the first row was rewritten already (a split file's piece: RowVisit::kAgain)
  // Stop once this many rows are kept (a piece of model.h5 that takes the next kept rows of a tensor).
  std::optional<uint64_t> kept_at_most;
  // All of the run's rows in one chunk (a collective write of model.h5 takes a piece at once): the buffer grows
  // to hold them; the caller planned pieces that fit it.
  bool one_chunk = false;
  uint64_t scratch_row_bytes = 0;  // buffer the writer wants per row of a chunk (e.g. to group rows by target)
  // A chunk's bytes at most (0: the whole buffer). The copy engine keeps a chunk within its cache-sized window, so
  // that the checksum and the write read rows still in cache: written from an 8 MiB chunk, the kernel's copy into
  // the page cache took 8 times as long a byte as from a 1 MiB one (a merge, perf).
  size_t chunk_bytes = 0;
  bool counting = false;  // a count pass's run (count_kept_rows): not the stream, whose fault point it skips
};

inline constexpr size_t kCountPassBufferBytes = 1u << 20;  // a count pass's rows read at a time (count_kept_rows)

// One chunk of kept rows, as the writer gets it.
struct RowChunk {
  uint64_t first = 0;        // the source row of the chunk's first row (for messages)
  uint64_t source_rows = 0;  // the source rows the chunk covers
  uint64_t rows = 0;         // the rows kept
  std::vector<const unsigned char*> slots;  // per output slot: `rows` output rows, back to back
  const uint32_t* targets = nullptr;        // with route: each row's target part
  unsigned char* scratch = nullptr;         // scratch_row_bytes per row of the chunk
};

class RowLoop {
 public:
  // `buffer` is the caller's (a sink's one buffer per rank), lent for each run.
  explicit RowLoop(std::vector<char>& buffer) : buffer_(buffer) {}

  // Runs the rows through the steps and hands each chunk to `write`; checks for an interruption after each.
  // Returns the source row where it stopped (run.end, or earlier with kept_at_most).
  Result<uint64_t> run(RowReader& reader, const RowRun& run, const std::function<Status(const RowChunk&)>& write);

  // A count pass's run: the rows of [run.first, run.end) that stay, and with run.route how many of them go to each
  // of `targets` target parts (per_target, all zero otherwise), read in the loop's chunks. `run` has no output
  // slots; the reader should have only the columns the decisions need.
  struct Counted {
    uint64_t kept = 0;
    std::vector<uint64_t> per_target;
  };
  Result<Counted> count_kept_rows(RowReader& reader, RowRun run, uint32_t targets);

 private:
  std::vector<char>& buffer_;
  std::vector<uint32_t> kept_;      // a read's kept rows, as offsets from its first
  std::vector<unsigned char> keep_;  // a RowFilter's decisions
  std::vector<uint32_t> targets_;   // a chunk's rows' target parts
};

}  // namespace recis_convert
