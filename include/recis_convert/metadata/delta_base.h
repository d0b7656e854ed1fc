// The step a delta export starts after (--delta-since STEP|BASE_EXPORT): a number of steps as given, or the
// "step" of an earlier export's manifest.json (a full export or a delta: deltas chain). The delta holds the rows
// updated after it (transforms/row_delta.h).
#pragma once

#include <cstdint>
#include <string>

#include "recis_convert/common/error.h"

namespace recis_convert {

// `since` as given. Digits only: that step. Else an export directory: its manifest's "step", which must be a
// whole number; an export without one (made before this tool recorded steps, or of a checkpoint with no global
// step) is bad input naming its manifest. Neither a step nor a directory is a usage error.
Result<int64_t> resolve_delta_base(const std::string& since);

}  // namespace recis_convert
