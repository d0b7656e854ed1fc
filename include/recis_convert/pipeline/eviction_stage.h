// With --evict-older-than / --evict-l2-below / --delta-since, between the plan and the stream: which rows of each
// part stay.
//   1. every rank finds the decision columns (step_filter, embedding) in its own data files' headers;
//   2. rank 0 plans one decision per part (plan/eviction_plan.h) and sends each rank the parts it counts;
//   3. each part's kept rows are counted by one rank, reading only its decision columns (RowSelector), which
//      records them as a bitmap in the staging directory (kept_row_bitmap.h) for the write pass;
//   4. rank 0 gathers the counts and sends each rank the selections of the parts whose slots lie in its files,
//      for the write pass (file_export.h: each slot of a part keeps the same rows).
// Every rank learns whether it all succeeded, so none waits on a failed one.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/error.h"
#include "recis_convert/mpi/comm.h"
#include "recis_convert/plan/eviction_plan.h"
#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/sources/global_step.h"

namespace recis_convert {

struct PartCount {
  PartId part;
  uint64_t rows = 0;
  uint64_t kept = 0;
};

// What one rank found or counted, or why it could not.
struct RankColumns {
  std::optional<Error> error;
  std::vector<LocatedColumn> columns;
};
struct RankCounts {
  std::optional<Error> error;
  std::vector<PartCount> counts;
};

// Per table, summed over its parts (rank 0).
struct TableEviction {
  uint64_t rows = 0;     // of the parts a rule applies to
  uint64_t evicted = 0;
};

struct EvictionCounts {
  std::vector<PartCount> parts;                 // sorted by part (rank 0; empty elsewhere)
  std::map<std::string, TableEviction> tables;  // rank 0
  PartSelections selections;                    // every rank: the selected parts with a slot in its files
  std::string kept_rows_dir;                    // the bitmaps' folder ("" in a dry run): rank 0 removes it once
                                                // every rank has streamed, before publishing
};

// Every rank, collectively. `mine`: this rank's data files (indices into listing.files); `owners`: each file's rank;
// `settings`: the rules, and on rank 0 each step_filter table's global step (unused elsewhere); `staging_dir`: where
// the bitmaps' folder goes ("" for none: every writer then reads the decision columns again).
Result<EvictionCounts> count_evictions(const EvictionSettings& settings, const CheckpointListing& listing,
                                       const std::vector<size_t>& mine, const std::vector<int>& owners,
                                       const std::string& staging_dir, Comm& comm);

}  // namespace recis_convert
