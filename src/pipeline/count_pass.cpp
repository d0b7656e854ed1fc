#include "recis_convert/pipeline/count_pass.h"

#include "recis_convert/pipeline/job_log.h"

namespace recis_convert {

using Clock = std::chrono::steady_clock;

Status count_rows(ExportRun& run) {
  const JobOptions& o = run.o;
  const SourceDescription& source = run.discovery.source;
  const ExportClock& clock = run.discovery.clock;
  const std::vector<size_t>& mine = run.mine;
  const auto start = Clock::now();
  if (o.selects_rows() && !source.has_row_tables()) {
    EvictionSettings settings;
    settings.rules = o.eviction;
    for (const auto& [table, step] : clock.tables) settings.global_steps[table] = step.step;
    settings.changed_after = run.discovery.delta_base;
    auto counted =
        count_evictions(settings, source.listing, mine, run.work.owners, run.discovery.staging_dir, run.comm);
    if (!counted) return counted.error();
    run.evictions = std::move(counted).value();
    if (run.comm.is_root()) log_evictions(o, run.evictions, clock.tables, run.discovery.delta_base, run.log);
    run.report.set_stage_seconds("select", seconds_since(start));
  }
  // into files (always: each rank's range is placed), or into model.h5 (where --evict-l2-below or --reshard place rows)
  if (source.has_row_tables() && (o.format != ExportFormat::kHdf5 || o.eviction.any() || o.reshard != 0)) {
    auto planned = o.format == ExportFormat::kHdf5
                       ? plan_whole_row_tables(o, *source.row_tables, mine, run.discovery.staging_dir, run.comm)
                       : plan_row_table_ranges(o, *run.discovery.source.row_tables, run.discovery.staging_dir, run.comm);
    if (!planned) return planned.error();
    run.row_table_plan = std::move(planned).value();
    run.evictions.tables = run.row_table_plan->tables;
    if (run.comm.is_root() && o.eviction.any()) {
      log_evictions(o, run.evictions, clock.tables, run.discovery.delta_base, run.log);
    }
    if (run.row_table_plan->layout) {
      run.reshard.emplace();
      run.reshard->layout = std::move(run.row_table_plan->layout);
    }
    if (o.eviction.any() || o.reshard != 0) run.report.set_stage_seconds("select", seconds_since(start));
  } else if (o.reshard != 0 && !source.has_row_tables()) {
    const auto reshard_start = Clock::now();
    auto planned = plan_resharding(o, source.listing, mine, run.work.owners, run.transforms,
                                   o.selects_rows() ? &run.evictions.selections : nullptr, run.discovery.staging_dir,
                                   run.comm);
    if (!planned) return planned.error();
    run.reshard = std::move(planned).value();
    run.report.set_stage_seconds("reshard", seconds_since(reshard_start));
  }
  return Ok{};
}

}  // namespace recis_convert
