#include "recis_convert/export_job.h"

#include <malloc.h>

#include <chrono>
#include <map>
#include <optional>

#include "recis_convert/common/fault_injection.h"
#include "recis_convert/common/interrupt.h"
#include "recis_convert/common/log.h"
#include "recis_convert/job.h"
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
Status discover_source(ExportRun& run) {
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
void plan_shares(ExportRun& run) {
  const auto start = Clock::now();
  const CheckpointListing& listing = run.discovery.source.listing;
  std::vector<uint64_t> sizes;
  uint64_t total_bytes = 0;
  for (const auto& f : listing.files) {
    sizes.push_back(f.size);
    total_bytes += f.size;
  }
  run.log.stage(run.discovery.source.what() + " " + listing.ckpt_dir + ": " + std::to_string(listing.files.size()) +
                " data files, " + format_bytes(static_cast<double>(total_bytes)) + ", " +
                std::to_string(run.all_blocks.sparse_size()) + " sparse blocks");
  run.report.set_stage_seconds("discover", seconds_since(run.start));
  const JobOptions& o = run.o;
  run.work = plan_work(sizes, run.comm.size(), o.balance, splits_files(o, run.discovery.source) ? o.piece_bytes() : 0);
  run.mine = run.work.whole_files_of_rank(run.comm.rank());
  run.pieces = run.work.pieces_of_rank(run.comm.rank());
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

// The export of a source (job.h runs its stages): the stages above, on the state it carries (ExportRun).
class ExportJob final : public Job {
 public:
  ExportJob(const JobOptions& o, Comm& comm, RunReport& report) : run_(o, comm, report) {}

  Status discover() override {
    auto discovered = discover_source(run_);  // 1
    if (discovered && (run_.o.eviction.older_than || run_.o.is_delta())) {
      run_.report.set_global_steps(run_.discovery.clock.tables);
    }
    return discovered;
  }

  Status plan() override {
    plan_shares(run_);  // 2
    return count_rows(run_);  // 2b
  }

  StreamRequest request() const override {
    uint64_t work_items = 0;
    for (const auto& items : run_.work.items) work_items += items.size();
    const JobOptions& o = run_.o;
    return StreamRequest{o,
                         run_.discovery.source,
                         run_.transforms,
                         run_.mine,
                         run_.pieces,
                         work_items,
                         run_.discovery.staging_dir,
                         o.selects_rows() ? &run_.evictions.selections : nullptr,
                         run_.reshard ? &*run_.reshard : nullptr,
                         run_.row_table_plan ? &*run_.row_table_plan : nullptr};
  }

  StreamOutcome stream(const StreamRequest& request) override {
    StreamOutcome streamed = run_.sink->stream(request, run_.comm, run_.log);
    if (!run_.comm.is_root()) {  // done with the blocks: room for the report at the barrier
      run_.discovery.source.listing.blocks = BlockCatalog();
      ::malloc_trim(0);  // and the heap the files' headers left fragmented goes back, not just to malloc
    }
    return streamed;
  }

  const Sink& sink() const override { return *run_.sink; }
  const QuantizationLedger& quantization() const override { return run_.quantization; }

  int finish_on_root(BarrierOutcome& barrier, const StreamRequest& request, Clock::time_point stream_start) override {
    const int status = finish_export(run_, barrier, request, stream_start);  // 5, 6
    if (run_.staging && status != 0 && run_.staging->resumable()) {
      run_.log.warn("--resume: kept " + run_.staging->path() + "; the same command with --resume goes on from it");
    }
    discard();
    return status;
  }

  // No-op after a successful publish, and for --resume's staging directory.
  void discard() override {
    if (run_.staging) run_.staging->discard();
  }

 private:
  ExportRun run_;
};

}  // namespace

ExitCode run_export(const JobOptions& o, Comm& comm) {
  const auto start = Clock::now();
  RunReport report(o, comm.host(), comm.size());
  if (comm.is_root() && !o.report.empty()) keep_report_for_stop(o.report, report);
  ExportJob job(o, comm, report);
  const ExitCode status = run_job(job, comm, report);
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
