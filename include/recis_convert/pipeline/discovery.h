// Stage 1 of the export, on rank 0: everything that can fail before any data moves fails here, with one message
// for all ranks. The source is resolved and checked (sources/), the export's clock and a delta's base resolved
// (sources/global_step.h, metadata/delta_base.h), the outputs checked apart from every input, the staging
// directory created (publish/) and, with --resume, the journal opened. What every rank then learns is a Discovery
// (its encoding: mpi/job_messages.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/error.h"
#include "recis_convert/common/log.h"
#include "recis_convert/metadata/run_report.h"
#include "recis_convert/publish/resume_journal.h"
#include "recis_convert/publish/staging.h"
#include "recis_convert/sources/global_step.h"
#include "recis_convert/sources/source.h"
#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

// What rank 0 tells every rank after discovery.
struct Discovery {
  SourceDescription source;
  std::string export_dir;   // where the export is published: --export-dir, or --publish-root's ROOT/<version>
  std::string staging_dir;  // empty in a dry run
  ExportClock clock;        // RecIS: the global step of each table with a step_filter slot, and the export's step
  std::optional<int64_t> delta_base;  // --delta-since, resolved: the delta holds the rows updated after it
};

// Rank 0. `staging` gets the staging directory (not in a dry run), `resume` the journal with --resume; the
// checkpoint chosen goes into `report`.
Result<Discovery> discover_on_root(const JobOptions& o, const RowTransformChain& transforms,
                                   std::optional<StagingDir>& staging, ResumeState& resume, RunReport& report,
                                   const Log& log);

}  // namespace recis_convert
