// The state an export carries from stage to stage, on every rank (export_job.cpp's stages, which job.cpp runs in
// order; each stage's work is in its own file of pipeline/).
#pragma once

#include <chrono>
#include <memory>
#include <optional>

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/log.h"
#include "recis_convert/metadata/run_report.h"
#include "recis_convert/mpi/comm.h"
#include "recis_convert/pipeline/discovery.h"
#include "recis_convert/plan/piece_plan.h"
#include "recis_convert/publish/resume_journal.h"
#include "recis_convert/publish/staging.h"
#include "recis_convert/pipeline/eviction_stage.h"
#include "recis_convert/pipeline/row_table_stage.h"
#include "recis_convert/pipeline/reshard_stage.h"
#include "recis_convert/sinks/sink.h"
#include "recis_convert/transforms/job_transforms.h"

namespace recis_convert {

// What one export carries from stage to stage, on every rank.
struct ExportRun {
  ExportRun(const JobOptions& options, Comm& c, RunReport& r)
      : o(options), comm(c), report(r), log(c.rank(), options.quiet, options.verbose),
        transforms(make_row_transforms(o.filter_optimizer, o.drop_slots, o.embedding_dtypes, &quantization)) {}
  const JobOptions& o;
  Comm& comm;
  RunReport& report;
  const std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  Log log;
  std::optional<StagingDir> staging;  // rank 0 only; removed on every path that does not publish (but --resume's)
  ResumeState resume;                 // rank 0 with --resume: the journal's lock, held to the end
  QuantizationLedger quantization;  // filled as this rank converts rows; travels to rank 0 in its report
  RowTransformChain transforms;
  Discovery discovery;      // 1: the source, the export and staging directories, the clock
  BlockCatalog all_blocks;  // rank 0: every block (the others get their files' after the plan)
  WorkPlan work;            // 2: the same on every rank
  std::vector<size_t> mine;       // and this rank's share of it: its whole files
  std::vector<WorkItem> pieces;   // and its pieces of split files
  EvictionCounts evictions;            // 2b: with --evict-* or --delta-since
  std::optional<ReshardStage> reshard;  // 2c: with --reshard
  std::optional<RowTablePlan> row_table_plan;  // HugeCTR: eviction and resharding in one stage
  std::unique_ptr<Sink> sink;                  // 3: chosen once the source is known (sinks/sink.h)
};

}  // namespace recis_convert
