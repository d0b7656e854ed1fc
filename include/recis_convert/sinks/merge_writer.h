// The write pass of a merge (commands/merge.h): one data file of the base export, with the deltas applied by id.
//   - a base row whose id a delta has takes the newest delta's row, in every slot (upsert);
//   - the ids of the deltas that the base does not have are appended to the part whose slice holds
//     `id % 65536`, after its own rows, in order of first appearance (delta_rows.h);
//   - a dense tensor (an optimizer scalar) is the newest delta's, if one has it, else the base's;
//   - with --evict-older-than, a row of a table with a step_filter slot whose merged last update is more than
//     STEPS before the merged step is left out of every slot (transforms/row_eviction.h), as an export would.
// The output header is computed before any row moves, from the base header and the parts' new ids, so the file
// is written front to back with one buffer, and checksummed as it goes. A part's ids are looked up once, not
// once per slot: each part keeps which of its rows the deltas replace and which rows it gains, and the delta rows
// of a chunk are read in runs of consecutive rows (a delta keeps its base's row order, so they mostly are).
// Memory: the buffer, a MiB of ids, and per part the delta rows it takes.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/sinks/file_export.h"
#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/sinks/writeback.h"
#include "recis_convert/sources/delta_rows.h"

namespace recis_convert {

struct MergeSettings {
  std::string staging_dir;
  size_t buffer_bytes = 8u << 20;
  uint64_t piece_bytes = 0;  // the checksums' pieces (checksum.h)
  WritebackQueue* writeback = nullptr;  // takes each written file for a later fsync; nullptr: close without fsync
  std::optional<uint64_t> older_than;  // --evict-older-than
  int64_t global_step = 0;             // the merged step, the clock of older_than
};

class MergeWriter {
 public:
  MergeWriter(const CheckpointListing& base, const DeltaRows& deltas, MergeSettings settings);

  // Writes base.files[file] merged into the staging directory. Bad input names the file (and tensor, row).
  Result<FileResult> write(size_t file);

  // The rows --evict-older-than left out so far, per table, counted once per part (with its id tensor).
  const std::map<std::string, uint64_t>& evicted() const { return evicted_; }

 private:
  struct Replacement {  // a base row that a delta row replaces
    uint64_t row = 0;
    DeltaRows::Location at;
  };
  struct PartGain {  // what the deltas do to a base part
    std::vector<Replacement> replaced;          // in row order
    std::vector<DeltaRows::Location> added;     // the new ids' rows, in order (those eviction keeps)
    std::optional<RowColumn> steps;             // evicting: the part's step_filter
    uint64_t kept_rows = 0;  // of its own rows (all of them unless evicting)
    uint64_t evicted = 0;    // its own rows and new ids left out
  };
  // A delta row to copy into `into`.
  struct Fetch {
    DeltaRows::Location at;
    char* into = nullptr;
  };
  Result<const PartGain*> gain_of(const std::string& table, const std::string& suffix, std::string_view slice);
  // --evict-older-than: keep[r] for the `n` base rows of a part from `first`, each by its newest step_filter (the
  // delta's where one replaces the row); `replaced` from the first replacement at or after `first`.
  Status decide_rows(const PartGain& gain, const Replacement* replaced, const Replacement* replaced_end,
                     uint64_t first, uint64_t n, unsigned char* keep);
  // Copies the delta rows of `slot`, reading runs of consecutive rows of one delta part at a time.
  Status fetch_rows(const std::string& slot, const std::vector<Fetch>& fetches, uint64_t row_bytes);
  Result<RowColumn> base_column(const std::string& key);
  // A base file's header, read once (a file's header serves its own write and the id columns others look up).
  Result<const SafetensorsHeader*> header_of(uint32_t file);
  Status write_sparse(int in, const RowColumn& column, const std::string& slot, const PartGain& gain, int out,
                      const std::string& out_path, class PieceChecksum& checksum);
  Status append(int out, const std::string& out_path, const char* data, size_t size, class PieceChecksum& checksum);

  const CheckpointListing& base_;
  const DeltaRows& deltas_;
  MergeSettings settings_;
  std::vector<char> buffer_;
  std::vector<char> run_;  // a run of delta rows
  std::map<std::string, PartGain> gains_;  // by the part's id key
  // Per table of the deltas, whether the base has each delta id (by its ordinal): an id's slice names the one
  // part that can have it, so the scan of that part settles it.
  std::vector<std::vector<bool>> in_base_;
  std::map<std::string, uint64_t> evicted_;
  std::map<uint32_t, SafetensorsHeader> headers_;  // base files whose headers were read
  OpenInputs files_;  // the source files (base or delta), each opened once
};

}  // namespace recis_convert
