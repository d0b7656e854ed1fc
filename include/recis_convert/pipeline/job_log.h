// What an export tells the user about its plan, on rank 0: the plan line (what is done to the rows, over how many
// ranks), the files split into pieces, and per table the rows an eviction or a delta leaves out.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/log.h"
#include "recis_convert/plan/piece_plan.h"
#include "recis_convert/pipeline/eviction_stage.h"
#include "recis_convert/sources/global_step.h"
#include "recis_convert/sources/source.h"
#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

void log_plan(const JobOptions& o, const SourceDescription& source, const RowTransformChain& transforms, int ranks,
              const Log& log);

// Whether a file too large for one rank's fair share is split into pieces that several ranks write (piece_plan.h).
bool splits_files(const JobOptions& o, const SourceDescription& source);

void log_split_files(const WorkPlan& work, const CheckpointListing& listing, const Log& log);

// Per table, how many rows the eviction rules leave out (what --dry-run reports before anything is written).
// With --delta-since, the rows it exports: those changed after the base and not evicted.
void log_evictions(const JobOptions& o, const EvictionCounts& counts,
                   const std::map<std::string, GlobalStep>& global_steps, std::optional<int64_t> delta_base,
                   const Log& log);

}  // namespace recis_convert
