#include "recis_convert/export_job.h"

#include <malloc.h>

#include <chrono>
#include <map>
#include <optional>

#include "recis_convert/common/fault_injection.h"
#include "recis_convert/common/interrupt.h"
#include "recis_convert/common/log.h"
#include "recis_convert/metadata/run_report.h"
#include "recis_convert/mpi/job_messages.h"
#include "recis_convert/pipeline/count_pass.h"
#include "recis_convert/pipeline/discovery.h"
#include "recis_convert/pipeline/export_run.h"
#include "recis_convert/pipeline/job_log.h"
#include "recis_convert/pipeline/finish_export.h"
#include "recis_convert/pipeline/rank_reports.h"
#include "recis_convert/plan/piece_plan.h"
#include "recis_convert/publish/staging_reach.h"
#include "recis_convert/sinks/sink.h"
#include "recis_convert/sources/source.h"

namespace recis_convert {
namespace {

using Clock = std::chrono::steady_clock;

// 1. discover: rank 0 resolves and checks the source and creates the staging directory; every rank learns both,
// but not the blocks: rank 0 keeps them all, and each other rank gets those of its own files after the plan.
Status discover(ExportRun& run) {
  fault_point("discover");
  auto discovery = broadcast_result<Discovery>(
      run.comm,
      [&] {
        auto found = discover_on_root(run.o, run.transforms, run.staging, run.resume, run.report, run.log);
        if (found) run.all_blocks = std::move(found.value().source.listing.blocks);
        return found;
      },
      "discovery");
  if (!discovery) return discovery.error();
  run.discovery = std::move(discovery).value();
  run.sink = make_sink(run.o, run.discovery.source);
  auto completed = complete_source(run.discovery.source, run.transforms);
  if (!completed) return completed;
  if (run.discovery.staging_dir.empty()) return Ok{};
  // every node writes into it: all must reach it
  return check_staging_reaches_every_rank(run.comm, run.discovery.staging_dir, run.discovery.export_dir);
}

// 2. plan: the same work plan on every rank (whole files, and pieces of the files too large for one rank's fair
// share); each rank learns the blocks of the files it reads
void plan(ExportRun& run) {
  const auto start = Clock::now();
  const CheckpointListing& listing = run.discovery.source.listing;
  std::vector<uint64_t> sizes;
  uint64_t total_bytes = 0;
  for (const auto& f : listing.files) {
    sizes.push_back(f.size);
    total_bytes += f.size;
  }
  run.log.stage(run.discovery.source.kind() + " " + listing.ckpt_dir + ": " + std::to_string(listing.files.size()) +
                " data files, " + format_bytes(static_cast<double>(total_bytes)) + ", " +
                std::to_string(run.all_blocks.sparse_size()) + " sparse blocks");
  run.report.set_stage_seconds("discover", seconds_since(run.start));
  const JobOptions& o = run.o;
  run.work = plan_work(sizes, run.comm.size(), o.balance, splits_files(o, run.discovery.source) ? o.piece_bytes() : 0);
  log_plan(o, run.discovery.source, run.transforms, run.comm.size(), run.log);
  log_split_files(run.work, listing, run.log);
  auto share = scatter_encoded_from_root<BlockCatalog>(
      run.comm, [&](int rank) { return run.all_blocks.encode_of_files(files_shared_with(run.work, rank)); },
      "block-share");
  if (!share) {  // a message this program wrote and cannot read, on one rank: no collective may wait for it
    Log::error(share.error().describe());
    run.comm.abort(static_cast<int>(share.error().code));
  }
  run.discovery.source.listing.blocks = run.comm.is_root() ? std::move(run.all_blocks) : std::move(share).value();
  run.discovery.source.listing.blocks_of_all_files = run.comm.is_root();
  run.report.set_stage_seconds("plan", seconds_since(start));
}

// The export itself, in the user's fixed shape; run_export() below adds the --report file around it.
ExitCode export_checkpoint(const JobOptions& o, Comm& comm, RunReport& report) {
  ExportRun run(o, comm, report);
  auto discovered = discover(run);  // 1
  if (!discovered) return run.stop(discovered.error());
  if (o.eviction.older_than || o.is_delta()) report.set_global_steps(run.discovery.clock.tables);
  plan(run);  // 2
  auto counted = count_rows(run);  // 2b
  if (!counted) return run.stop(counted.error());

  // 3. stream: each rank's share through the row transforms into the export format
  const auto stream_start = Clock::now();
  uint64_t work_items = 0;
  for (const auto& items : run.work.items) work_items += items.size();
  const std::vector<size_t> mine = run.work.whole_files_of_rank(comm.rank());
  const std::vector<WorkItem> my_pieces = run.work.pieces_of_rank(comm.rank());
  const StreamRequest request{o, run.discovery.source, run.transforms, mine, my_pieces, work_items,
                              run.discovery.staging_dir, o.selects_rows() ? &run.evictions.selections : nullptr,
                              run.reshard ? &*run.reshard : nullptr, run.hugectr_rows ? &*run.hugectr_rows : nullptr};
  StreamOutcome streamed = run.sink->stream(request, comm, run.log);
  const double my_seconds = seconds_since(stream_start);
  if (!comm.is_root()) {  // done with the blocks: room for the report below
    run.discovery.source.listing.blocks = BlockCatalog();
    ::malloc_trim(0);  // and the heap the files' headers left fragmented goes back, not just to malloc
  }
  BarrierOutcome agreed =  // 4
      agree_and_gather(comm, *run.sink, request, streamed, run.quantization, my_seconds, stream_start, report);

  int final_status = agreed.agreed;
  if (comm.is_root()) {  // 5, 6
    final_status = finish_export(run, agreed, request, stream_start);
    if (run.staging && final_status != 0 && run.staging->resumable()) {
      run.log.warn("--resume: kept " + run.staging->path() + "; the same command with --resume goes on from it");
    }
    if (run.staging) run.staging->discard();  // no-op after a successful publish, and for --resume's staging directory
  }
  // Everyone exits with rank 0's verdict, so mpirun's status is the job's status.
  auto verdict = broadcast_value(comm, final_status, "verdict");
  return static_cast<ExitCode>(verdict ? verdict.value() : static_cast<int>(ExitCode::kInternal));
}

}  // namespace

ExitCode run_export(const JobOptions& o, Comm& comm) {
  const auto start = Clock::now();
  RunReport report(o, comm.host(), comm.size());
  if (comm.is_root() && !o.report.empty()) keep_report_for_stop(o.report, report);
  const ExitCode status = export_checkpoint(o, comm, report);
  forget_report_for_stop();
  if (comm.is_root() && !o.report.empty()) {
    report.set_stage_seconds("total", seconds_since(start));
    // Never into the checkpoint: the options were checked before the run, but a ckpt_<step> that is a symlink
    // elsewhere is only known once discovered (and then the run was refused).
    const std::string checkpoint = o.source == SourceKind::kRecis ? report.checkpoint_dir() : "";
    auto apart = check_apart_from_inputs(o.report, {{checkpoint, "the source checkpoint"}});
    auto written = !apart ? apart
                          : write_file_atomically(o.report, report.to_json(status, status == ExitCode::kOk && !o.dry_run));
    // The export's outcome stands either way; the report is about it, not part of it.
    if (!written) Log(comm.rank(), o.quiet, o.verbose).warn(written.error().describe());
  }
  return status;
}

}  // namespace recis_convert
