// A merge's source (commands/merge.h): the base export's data files, with the deltas applied by id, as the
// export's file road takes them (sinks/file_export.h TensorRows):
//   - a base row whose id a delta has takes the newest delta's row, in every slot (upsert);
//   - the ids of the deltas that the base does not have are appended to the part whose slice holds
//     `id % 65536`, after its own rows, in order of first appearance (delta_rows.h);
//   - a dense tensor (an optimizer scalar) is the newest delta's, if one has it, else the base's;
//   - with --evict-older-than or --evict-l2-below, the rows the export's rules leave out (transforms/row_selection.h),
//     judged by their merged step_filter (against the merged step) or embedding, are left out of every slot.
// A part's merge (merged_rows.h) is worked out once per file from its ids, and with eviction its kept rows are
// counted by a RowSelector over its merged rows and recorded as a bitmap (transforms/kept_row_bitmap.h), the
// selection an export's count pass would give. A tensor the deltas leave alone keeps its own bytes, so the copy
// engine copies it whole; a merged one comes through the row loop from its MergedRows, with the job's row
// transforms.
// A merged tensor's rows carry their part's merged ids beside them (RowsFrom::ids), which route them with
// --reshard.
// Memory: the deltas' headers, a MiB of base ids, a part's join (at most JoinSettings::join_bytes: part_merge.h),
// and for the parts worked out lately (kCachedMergeBytes), or whose TensorRows a caller keeps (model.h5's writer
// keeps a rank's until it has written them), the places of the rows the deltas replace and add, in memory for a
// small merge, in a spill file for a large one.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/plan/eviction_plan.h"
#include "recis_convert/sinks/file_export.h"
#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/sources/delta_rows.h"
#include "recis_convert/sources/merged_rows.h"
#include "recis_convert/sources/part_merge.h"

namespace recis_convert {

struct MergeSettings {
  std::optional<uint64_t> older_than;  // --evict-older-than
  int64_t global_step = 0;             // the merged step, the clock of older_than
  std::optional<float> l2_below;       // --evict-l2-below
  std::string kept_rows_prefix;        // evicting: the path prefix of this rank's kept-row bitmaps
  JoinSettings join;                   // a part's join: its memory, and where a larger one spills (part_merge.h),
                                       // and the verifier that sees every base byte read (input_verifier.h)
};

class MergedExport {
 public:
  MergedExport(const CheckpointListing& base, const DeltaRows& deltas, MergeSettings settings);

  // The rows of a tensor of one of the base's files (FileExportSettings::tensor_rows). Bad input names the file
  // (and tensor, row).
  Result<TensorRows> rows_of(const TensorOfFile& tensor);

  // The rows --evict-* left out so far, per table, counted once per part (with its id tensor).
  const std::map<std::string, uint64_t>& evicted() const { return evicted_; }
  // The tables whose rows --evict-older-than judged (those with a step_filter slot): their clock is the merged step.
  const std::set<std::string>& judged_by_step() const { return by_step_; }

 private:
  struct MergedPart {
    std::shared_ptr<const PartMerge> merge;          // shared with the readers of its slots
    std::shared_ptr<const PartSelection> selection;  // evicting: the merged rows kept
  };
  Result<MergedPart> merged_part(const std::string& table, const std::string& suffix, std::string_view slice);
  // --evict-*: the part's merged rows the export's rules keep (transforms/row_selection.h), counted and recorded as
  // a bitmap; null where no rule applies to the table.
  Result<std::shared_ptr<const PartSelection>> select_rows(const std::string& table, const std::string& suffix,
                                                           const std::shared_ptr<const PartMerge>& merge);
  // A slot of a part as a decision column of its merged rows (for the eviction rules), and the reader of them.
  Result<std::pair<DecisionColumn, std::shared_ptr<RowReader>>> merged_column(const std::string& key,
                                                                             std::shared_ptr<const PartMerge> merge,
                                                                             const std::string& slot);
  Result<RowColumn> base_column(const std::string& key);
  // A base file's header, read once (the id and step_filter columns a part's merge looks up).
  Result<const SafetensorsHeader*> header_of(uint32_t file);

  const CheckpointListing& base_;
  const DeltaRows& deltas_;
  MergeSettings settings_;
  // The parts worked out lately, by their id key, the least recently used forgotten first once they hold more than
  // kCachedMergeBytes: a part's slots often lie in several files written one after another (RecIS's writer fills
  // a file, then the next), and each would otherwise work the part out again.
  struct CachedPart {
    MergedPart part;
    uint64_t last_use = 0;
    uint64_t bytes = 0;
  };
  static constexpr uint64_t kCachedMergeBytes = 4u << 20;
  std::map<std::string, CachedPart> parts_;
  uint64_t uses_ = 0, cached_bytes_ = 0;
  std::string headers_file_;  // the file being written, whose parts' headers are read
  std::map<std::string, uint64_t> evicted_;
  std::set<std::string> by_step_;
  std::map<uint32_t, SafetensorsHeader> headers_;  // base files whose headers were read, for the file being written
  OpenInputs files_;  // the source files (base or delta), each opened once
  uint64_t bitmaps_ = 0;  // kept-row bitmaps recorded so far
};

}  // namespace recis_convert
