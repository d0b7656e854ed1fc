// Stages 5 and 6 of the export, on rank 0 once every rank succeeded: the summary of what was written, the metadata
// (metadata/), the dense network (dense/), the manifest and the run record; then the publish (publish/): the atomic
// rename, and with --publish-root the serving root's versions. A dry run says what it would have done instead.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/error.h"
#include "recis_convert/common/log.h"
#include "recis_convert/metadata/metadata_stage.h"
#include "recis_convert/metadata/run_report.h"
#include "recis_convert/pipeline/export_run.h"
#include "recis_convert/pipeline/rank_reports.h"
#include "recis_convert/publish/staging.h"
#include "recis_convert/sources/global_step.h"
#include "recis_convert/sources/source.h"

namespace recis_convert {

Status finish_on_root(const JobOptions& o, const std::string& export_dir, const SourceDescription& source,
                      Gathered gathered, std::map<std::string, TableEvictionRecord> evictions,
                      const ExportClock& clock, std::optional<int64_t> delta_base, StagingDir* staging,
                      const Log& log, std::chrono::steady_clock::time_point start, RunReport& report);

// The whole of stages 5 and 6 on rank 0 after the barrier: every rank's results collected (rank_reports.h), the
// files all ranks wrote together described (sinks/sink.h), then finish_on_root when every rank succeeded.
// Returns the job's status.
int finish_export(ExportRun& run, BarrierOutcome& barrier, const StreamRequest& request,
                  std::chrono::steady_clock::time_point stream_start);

}  // namespace recis_convert
