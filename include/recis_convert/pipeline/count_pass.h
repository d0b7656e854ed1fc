// Stage 2b of the export, between the plan and the stream, where rows are selected or routed: which rows of each
// part stay (--evict-*, --delta-since: pipeline/eviction_stage.h, applied by the write pass) and where every kept row
// goes (--reshard: pipeline/reshard_stage.h; rank 0 creates the output files); HugeCTR's tables in one stage
// (pipeline/row_table_stage.h). Collective; a failure is every rank's.
#pragma once

#include "recis_convert/common/error.h"
#include "recis_convert/pipeline/export_run.h"

namespace recis_convert {

Status count_rows(ExportRun& run);

}  // namespace recis_convert
