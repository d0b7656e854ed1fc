// Whether a base export and deltas can be merged, in the order given (merge, commands/merge.h). Pure: tested
// without files.
//   - the base is a full export with a step; every delta is a delta;
//   - every delta comes from the base's training run (the same lineage: the directory that held the checkpoints),
//     so a delta of another run with the same steps is not merged;
//   - each delta's base_step is at most the running step (the base's, then each delta's) and its step greater:
//     otherwise updates would be lost (a gap) or replayed backwards;
//   - every table of a delta is a table of the base with the same exported slots and serving dtype, so a row
//     of the one can stand in for a row of the other;
//   - all are safetensors exports (merge writes the base's files).
// Each refusal is bad input naming the export.
#pragma once

#include <cstdint>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/sources/export_manifest.h"

namespace recis_convert {

// The step of the merged export: the last delta's.
Result<int64_t> check_merge_chain(const ExportManifest& base, const std::vector<ExportManifest>& deltas);

}  // namespace recis_convert
