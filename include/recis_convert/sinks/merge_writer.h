// The write pass of a merge (commands/merge.h): one data file of the base export, with the deltas applied by id.
//   - a base row whose id a delta has takes the newest delta's row, in every slot (upsert);
//   - the ids of the deltas that the base does not have are appended to the part whose slice holds
//     `id % 65536`, after its own rows, in order of first appearance (delta_rows.h);
//   - a dense tensor (an optimizer scalar) is the newest delta's, if one has it, else the base's;
//   - with --evict-older-than, a row of a table with a step_filter slot whose merged last update is more than
//     STEPS before the merged step is left out of every slot (transforms/row_eviction.h), as an export would.
// The output header is computed before any row moves, from the base header and the parts' new ids, so the file
// is written front to back with one buffer, and checksummed as it goes. Memory: the buffer, a MiB of ids, and
// per part the ids it gains.
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
#include "recis_convert/sources/delta_rows.h"

namespace recis_convert {

struct MergeSettings {
  std::string staging_dir;
  size_t buffer_bytes = 8u << 20;
  bool fsync = true;
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
  struct PartGain {  // what a base part gains: the deltas' ids in its slice that it does not have, in order
    std::vector<int64_t> new_ids;
    uint64_t kept_rows = 0;  // of its own rows (all of them unless evicting)
    bool evicting = false;   // --evict-older-than applies: the table has a step_filter slot
    uint64_t evicted = 0;    // its own rows and new ids left out
  };
  Result<const PartGain*> gain_of(const std::string& table, const std::string& suffix, std::string_view slice);
  // --evict-older-than: keep[r] for `n` base rows of a part from `first` (their ids given), each by its newest
  // step_filter (the delta's where one has the id); 0 when the row goes.
  Status decide_rows(const std::string& table, const RowColumn& steps, const int64_t* ids, uint64_t first,
                     uint64_t n, unsigned char* keep);
  Result<int64_t> delta_step(const std::string& table, const DeltaRows::Location& at);
  Result<RowColumn> base_column(const std::string& key);
  Status write_sparse(int in, const RowColumn& column, const std::string& table, const std::string& slot,
                      const RowColumn& ids, const PartGain& gain, int out, const std::string& out_path,
                      class Checksum& checksum);
  Status append(int out, const std::string& out_path, const char* data, size_t size, class Checksum& checksum);
  Status read_delta_row(const std::string& slot, const DeltaRows::Location& at, uint64_t row_bytes, char* into);
  Result<int> opened(const std::string& path);  // a source file (base or delta), opened once

  const CheckpointListing& base_;
  const DeltaRows& deltas_;
  MergeSettings settings_;
  std::vector<char> buffer_;
  std::map<std::string, PartGain> gains_;  // by the part's id key
  std::map<std::string, uint64_t> evicted_;
  std::map<uint32_t, SafetensorsHeader> headers_;  // base files whose headers were read for their id tensors
  std::map<std::string, std::unique_ptr<FileDescriptor>> files_;  // by path
};

}  // namespace recis_convert
