// What the deltas do to one part of the base export (commands/merge.h), and the join that works it out: the base
// rows a delta row replaces (by id), and the ids of its slice the base lacks, appended in order of first appearance
// (delta_rows.h).
// Memory is bounded whatever the number of rows changed. A join whose deltas' ids fit kJoinBytes is made in memory
// and kept there. A larger one is a grace hash join: the part's base ids and the deltas' ids of its slice are
// written into classes by a hash of the id (seeded per process, so that no input can crowd one class), each class
// is joined in memory, and its results, sorted runs, are merged into one unnamed spill file (common/spill_file.h),
// read back a range at a time; only a sparse index of it stays in memory.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/common/spill_file.h"
#include "recis_convert/plan/slices.h"
#include "recis_convert/sources/delta_rows.h"
#include "recis_convert/sources/input_verifier.h"

namespace recis_convert {

class PartMerge {
 public:
  struct Replacement {  // a base row that a delta row replaces
    uint64_t row = 0;
    DeltaRows::Location at;
  };

  PartMerge() = default;
  // In memory: `replaced` in row order, `added` in the order the rows are appended.
  PartMerge(uint64_t base_rows, std::vector<Replacement> replaced, std::vector<DeltaRows::Location> added)
      : base_rows_(base_rows), replaced_(std::move(replaced)), added_(std::move(added)),
        replaced_count_(replaced_.size()), added_count_(added_.size()) {}

  uint64_t base_rows() const { return base_rows_; }
  uint64_t rows() const { return base_rows_ + added_count_; }
  bool changed() const { return replaced_count_ > 0 || added_count_ > 0; }
  bool spilled() const { return spill_ != nullptr; }
  uint64_t memory_bytes() const;

  // The replacements of the base rows [first, end), in row order, into `out` (cleared first).
  Status replaced_between(uint64_t first, uint64_t end, std::vector<Replacement>& out) const;
  // The delta rows of the appended rows [first, end) (0: the first appended), into `out` (cleared first).
  Status added_between(uint64_t first, uint64_t end, std::vector<DeltaRows::Location>& out) const;

 private:
  friend class PartJoin;
  static constexpr uint64_t kIndexStride = 4096;  // spilled replacements per entry of the in-memory index

  uint64_t base_rows_ = 0;
  std::vector<Replacement> replaced_;
  std::vector<DeltaRows::Location> added_;
  uint64_t replaced_count_ = 0, added_count_ = 0;
  // spilled: the replacements (row, part, delta row) from record 0, the appended rows (part, delta row) after them,
  // and the row of every kIndexStride-th replacement
  std::shared_ptr<const SpillFile> spill_;
  std::vector<uint64_t> replaced_index_;
};

// How a join may use memory, and where it spills.
struct JoinSettings {
  static constexpr uint64_t kJoinBytes = 16u << 20;  // a join's tables of the deltas' ids, at most
  uint64_t join_bytes = kJoinBytes;
  std::string spill_dir;  // the export's staging directory
  InputVerifier* verifier = nullptr;  // sees the base ids the join reads (input_verifier.h); may be null
};

// Joins the base part whose id column is `ids` (open as `fd`; its residues lie in `slice`) with the deltas' ids of
// `table` in the slice. Bad input names the tensor that cannot be read.
Result<std::shared_ptr<const PartMerge>> join_part(const RowColumn& ids, int fd, const DeltaRows& deltas,
                                                   const std::string& table, const Slice& slice,
                                                   const JoinSettings& settings);

}  // namespace recis_convert
