#include "recis_convert/commands/merge.h"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <set>

#include "recis_convert/commands/verify.h"
#include "recis_convert/common/fault_injection.h"
#include "recis_convert/common/interrupt.h"
#include "recis_convert/common/log.h"
#include "recis_convert/job.h"
#include "recis_convert/metadata/export_files.h"
#include "recis_convert/metadata/metadata_stage.h"
#include "recis_convert/metadata/run_report.h"
#include "recis_convert/mpi/job_messages.h"
#include "recis_convert/plan/merge_chain.h"
#include "recis_convert/plan/piece_plan.h"
#include "recis_convert/sinks/sink.h"
#include "recis_convert/pipeline/job_log.h"
#include "recis_convert/publish/staging.h"
#include "recis_convert/publish/staging_reach.h"
#include "recis_convert/transforms/kept_row_bitmap.h"
#include "recis_convert/sources/delta_rows.h"
#include "recis_convert/sources/merged_export.h"
#include "recis_convert/transforms/job_transforms.h"
#include "recis_convert/sources/export_manifest.h"
#include "recis_convert/sources/input_verifier.h"

namespace recis_convert {
namespace {

using Clock = std::chrono::steady_clock;

// The options the export's stream stage reads (copy buffer, checksum pieces, fsync, whether rows are selected),
// from the merge's own: every rank knows them, where only rank 0 reads the base's manifest.
JobOptions stream_options(const MergeOptions& m) {
  JobOptions o;
  o.reshard = m.reshard;
  o.format = m.format;
  o.balance = m.balance;
  o.buffer_mib = m.buffer_mib;
  o.chunk_mib = m.chunk_mib;
  o.fsync = m.fsync;
  o.quiet = m.quiet;
  o.eviction.older_than = m.older_than;
  o.eviction.l2_below = m.l2_below;
  return o;
}

// The content options of the merged export: those the base was exported with (its manifest's "options"), which
// its rows carry, and the row transforms this merge applies on top (a slot filtered by either is gone; the serving
// dtypes are the base's or the merge's, never both: check_transforms_apply). They shape its metadata (the tables'
// serving dtypes and dims) and its manifest.
JobOptions options_of(const ExportManifest& base, const MergeOptions& m) {
  JobOptions o = stream_options(m);  // and the eviction rules this merge applied, not the base's
  o.export_dir = m.export_dir;
  o.overwrite = m.overwrite;
  const nlohmann::json& options = base.options;
  auto serving = [](const nlohmann::json& name) {
    for (ServingDType d : {ServingDType::kFp16, ServingDType::kBf16, ServingDType::kInt8, ServingDType::kInt4,
                           ServingDType::kInt2}) {
      if (name.is_string() && name.get<std::string>() == quantization_name(d)) return d;
    }
    return ServingDType::kNone;
  };
  o.filter_optimizer = options.value("filter_optimizer", false);
  if (options.contains("drop_slots") && options["drop_slots"].is_array()) {
    o.drop_slots = options["drop_slots"].get<std::vector<std::string>>();
  }
  if (options.contains("quantize_embeddings")) o.embedding_dtypes.all = serving(options["quantize_embeddings"]);
  if (options.contains("quantize_tables") && options["quantize_tables"].is_object()) {
    for (const auto& [table, dtype] : options["quantize_tables"].items()) o.embedding_dtypes.tables[table] = serving(dtype);
  }
  if (options.contains("reshard") && options["reshard"].is_number_unsigned()) {
    o.reshard = options["reshard"].get<uint32_t>();
  }
  o.filter_optimizer = o.filter_optimizer || m.filter_optimizer;
  for (const auto& slot : m.drop_slots) {
    if (std::find(o.drop_slots.begin(), o.drop_slots.end(), slot) == o.drop_slots.end()) o.drop_slots.push_back(slot);
  }
  if (m.embedding_dtypes.any()) o.embedding_dtypes = m.embedding_dtypes;
  if (m.reshard != 0) o.reshard = m.reshard;
  o.format = m.format;
  return o;
}

// A merge converts float rows to a serving dtype; rows the base export converted already are not converted again
// (bad input naming the base).
Status check_transforms_apply(const ExportManifest& base, const MergeOptions& m) {
  const JobOptions base_options = options_of(base, MergeOptions{});
  if (m.embedding_dtypes.any() && base_options.embedding_dtypes.any()) {
    return bad_input(base.dir, "was exported with serving dtypes already (its manifest's \"options\"); a merge "
                               "converts float rows only: merge without --quantize-embeddings/--quantize-table");
  }
  return Ok{};
}

// Rank 0, stage 1: the manifests, the chain, the exports' indexes, the staging directory.
Result<MergeInputs> read_inputs(const MergeOptions& m, std::vector<ExportManifest>& manifests,
                                std::optional<StagingDir>& staging, const Log& log) {
  auto base_manifest = read_export_manifest(m.base);
  if (!base_manifest) return base_manifest.error();
  manifests.push_back(std::move(base_manifest).value());
  std::vector<ExportManifest> deltas;
  for (const auto& dir : m.deltas) {
    auto delta = read_export_manifest(dir);
    if (!delta) return delta.error();
    deltas.push_back(std::move(delta).value());
  }
  auto checked = check_merge_chain(manifests[0], deltas);
  if (!checked) return checked.error();
  auto converts = check_transforms_apply(manifests[0], m);
  if (!converts) return converts.error();
  for (auto& d : deltas) manifests.push_back(std::move(d));
  MergeInputs inputs;
  inputs.step = checked.value();
  auto base = discover_checkpoint(m.base);
  if (!base) return base.error();
  inputs.base = std::move(base).value();
  SourceDescription described;
  described.listing = inputs.base;
  auto named = check_named_tables(m.embedding_dtypes, described, "base export");
  if (!named) return named.error();
  for (const auto& dir : m.deltas) {
    auto delta = discover_checkpoint(dir);
    if (!delta) return delta.error();
    inputs.deltas.push_back(std::move(delta).value());
  }
  // the merged export lands in none of its inputs, and --overwrite does not replace one
  std::vector<NamedPath> exports{{m.base, "the base export"}};
  for (const auto& dir : m.deltas) exports.push_back({dir, "the delta export"});
  auto apart = check_apart_from_inputs(m.export_dir, exports);
  if (!apart) return apart.error();
  std::vector<std::string> stale;
  auto created = StagingDir::create(m.export_dir, m.overwrite, &stale);
  if (!created) return created.error();
  warn_removed_stale(stale, log);
  staging.emplace(std::move(created).value());
  inputs.staging_dir = staging->path();
  const std::string bitmaps = kept_row_bitmap_dir(inputs.staging_dir);  // --evict-older-than's kept rows
  if ((m.older_than || m.l2_below) && ::mkdir(bitmaps.c_str(), 0755) != 0) {
    return output_error(bitmaps, std::string("cannot create: ") + std::strerror(errno));
  }
  log.stage("merge: " + m.base + " (step " + std::to_string(*manifests[0].step) + ") and " +
            std::to_string(m.deltas.size()) + " delta(s) up to step " + std::to_string(inputs.step) + ": " +
            std::to_string(inputs.base.files.size()) + " data files");
  return inputs;
}

// Rank 0, stage 4: metadata, the carried files, the manifest; then publish.
Status finish_merge(const MergeOptions& m, const std::vector<ExportManifest>& manifests, int64_t step,
                    const CheckpointListing& base, Gathered gathered, StagingDir& staging, RunReport& report,
                    Clock::time_point start, const Log& log) {
  const auto metadata_start = Clock::now();
  const JobOptions o = options_of(manifests[0], m);
  SourceDescription source;
  source.listing = base;
  JobOptions summarized = o;
  summarized.filter_optimizer = m.filter_optimizer;  // the base's filter had its say (and its warning) already
  auto summary = summarize_export(summarized, source, std::move(gathered.files), std::move(gathered.quantization), log);
  if (!summary) return summary.error();
  summary.value().shared = std::move(gathered.shared);  // model.h5's size and checksum
  const GlobalStep merged{step, "merge of " + std::to_string(manifests.size() - 1) + " delta(s)"};
  summary.value().clock.step = merged;
  for (const auto& [table, rows] : gathered.evicted) {  // by the merged step, as an export records its table's clock
    summary.value().evictions[table] = TableEvictionRecord{
        rows, gathered.judged_by_step.count(table) ? std::optional<GlobalStep>(merged) : std::nullopt};
    log.stage("evicted " + std::to_string(rows) + " rows of " + nlohmann::json(table).dump());
  }
  const std::string bitmaps = kept_row_bitmap_dir(staging.path());
  if ((m.older_than || m.l2_below) && !remove_tree(bitmaps)) {
    return output_error(bitmaps, "cannot remove the kept-row bitmaps");
  }
  auto manifest = write_export_metadata(o, source, summary.value(), staging.path());
  if (!manifest) return manifest.error();
  // the dense export, fg, mc and assets: each file from the newest export that has it
  std::set<std::string> carried;
  for (auto e = manifests.rbegin(); e != manifests.rend(); ++e) {
    for (const CarriedFile& f : e->carried) {
      if (!carried.insert(f.name).second) continue;
      auto copied = copy_file_into(e->dir + "/" + f.name, staging.path(), f.name, m.fsync);
      if (!copied) return copied.error();
      (f.asset ? manifest.value().asset_files : manifest.value().metadata_files).push_back(copied.value());
    }
  }
  for (const auto& e : manifests) manifest.value().merged_from.push_back(resolved_path(e.dir));
  manifest.value().lineage = manifests[0].lineage;  // the merged rows are still the base's training run
  report.set_stage_seconds("metadata", seconds_since(metadata_start));
  report.set_stage_seconds("total", seconds_since(start));
  auto written = write_manifest_and_record(o, manifest.value(), staging.path(), report);
  if (!written) return written.error();
  fault_point("publish");
  if (auto stop = interruption()) return *stop;
  auto published = staging.publish(m.overwrite);
  if (!published) return published.error();
  warn_removed_stale(staging.remove_dead_runs(), log);  // ranks of a killed merge may outlive mpirun
  const ExportSummary& s = summary.value();
  log.stage("published " + m.export_dir + ": " + std::to_string(manifest.value().files.size()) + " data files, " +
            std::to_string(s.tables.size()) + " tables at step " + std::to_string(step) + ", " +
            format_bytes(static_cast<double>(s.bytes_out)) + " out");
  return Ok{};
}

// The inputs' problems ("file: what is wrong", verify's words) as one line.
Error inputs_do_not_verify(const std::vector<std::string>& problems) {
  return bad_input("", problems.front() +
                           (problems.size() > 1 ? " (and " + std::to_string(problems.size() - 1) +
                                                      " more problem(s): see recis-convert verify)"
                                                : std::string()) +
                           "; the inputs of a merge must verify");
}

// 2a, every rank: every input is what its manifest says (a flipped byte, which verify catches, would otherwise be
// merged into an export whose new manifest vouches for it): the deltas and the base's other files now, the base's
// whole files (`hashed_in_stream`, their size now) from the stream's reads of them (sources/input_verifier.h). Every
// rank returns rank 0's verdict, and the base's manifest entries.
Result<std::vector<ManifestFile>> check_inputs_verify(const MergeOptions& m, const std::set<std::string>& hashed_in_stream,
                                                      Comm& comm) {
  std::vector<std::string> input_dirs{m.base};
  input_dirs.insert(input_dirs.end(), m.deltas.begin(), m.deltas.end());
  auto checked = check_manifest_checksums(comm, input_dirs, hashed_in_stream);
  auto verdict = broadcast_result<Ok>(
      comm,
      [&]() -> Status {
        if (!checked) return checked.error();
        const auto& problems = checked.value().problems;
        if (problems.empty()) return Ok{};
        return inputs_do_not_verify(problems);
      },
      "merge-inputs-verified");
  if (!verdict) return verdict.error();
  if (!checked) return checked.error();  // a failure is every rank's alike: not here
  return std::move(checked.value().files[0]);
}

// 3b, every rank: the base's files each rank streamed, checked from its stream's reads (and the rest read now). A
// file that differs from its manifest is every rank's failure, the first in rank order: it is what to say, whatever
// else reading the corrupt file made go wrong on any rank. After a failed stream only the file a bad input names is
// checked (a flipped byte may be why it failed); the rest of the share is not read to report a full disk.
void check_streamed_inputs(InputVerifier& verifier, StreamOutcome& streamed, Comm& comm) {
  Status mine = Ok{};
  const bool failed_on_input = streamed.failure && streamed.failure->code == ExitCode::kBadInput;
  if (!streamed.failure || failed_on_input) {
    auto problems =
        verifier.finish(failed_on_input ? std::optional<std::string>(streamed.failure->file) : std::nullopt);
    if (!problems && !streamed.failure) streamed.failure = problems.error();
    if (problems && !problems.value().empty()) mine = inputs_do_not_verify(problems.value());
  }
  auto agreed = agree_on_first_error(comm, mine, "merge-inputs-streamed");
  if (!agreed) streamed.failure = agreed.error();
}

// The merged rows of the base's files (sources/merged_export.h), on this rank; `bitmaps`: its kept-row bitmaps'
// names start so.
MergedExport merged_rows(const MergeOptions& m, const MergeInputs& inputs, const DeltaRows& deltas,
                         const std::string& bitmaps, InputVerifier* verifier = nullptr) {
  MergeSettings merging;
  merging.older_than = m.older_than;
  merging.l2_below = m.l2_below;
  merging.global_step = inputs.step;
  merging.kept_rows_prefix = kept_row_bitmap_dir(inputs.staging_dir) + "/" + bitmaps;
  merging.join.spill_dir = inputs.staging_dir;
  merging.join.verifier = verifier;
  if (m.debug_join_kib) merging.join.join_bytes = static_cast<uint64_t>(m.debug_join_kib) << 10;
  return MergedExport(inputs.base, deltas, merging);
}

// The merge of an export with its deltas (job.h runs its stages). Its state from stage to stage, on every rank:
// the base's files planned as an export plans a checkpoint's (whole files, and pieces of those too large for one
// rank's share; each rank other than 0 holds the blocks of its own files, as an export's does: its results name
// them by their place there), the row transforms, the deltas' headers, and with --reshard the count pass's plan.
class MergeJob final : public Job {
 public:
  MergeJob(const MergeOptions& m, Comm& comm, RunReport& report)
      : m_(m), comm_(comm), report_(report), log_(comm.rank(), m.quiet, false) {}

  // 1. the exports, on rank 0
  Status discover() override {
    auto inputs = broadcast_result<MergeInputs>(
        comm_, [&] { return read_inputs(m_, manifests_, staging_, log_); }, "merge-inputs");
    if (!inputs) return inputs.error();
    inputs_ = std::move(inputs).value();
    auto reached = check_staging_reaches_every_rank(comm_, inputs_.staging_dir, m_.export_dir);
    if (!reached) return reached;
    report_.set_checkpoint(inputs_.base, "merge", "the base export; deltas: " + std::to_string(inputs_.deltas.size()));
    report_.set_stage_seconds("discover", seconds_since(start_));
    return Ok{};
  }

  // 2. the plan and the transforms; 2a. the inputs verified (the base's whole files as they stream); 2b. the
  // deltas' headers (a base part reads the ids of its slice when it is written); 2c, with --reshard: where every
  // merged row goes (pipeline/reshard_stage.h: rank 0 plans and creates the output files), counted over the merged
  // rows as the stream will read them.
  Status plan() override {
    const auto plan_start = Clock::now();
    o_ = stream_options(m_);
    source_.listing = inputs_.base;
    sink_ = make_sink(o_, source_);
    const CheckpointListing& base = inputs_.base;
    std::vector<uint64_t> sizes;
    for (const auto& f : base.files) sizes.push_back(f.size);
    work_ = plan_work(sizes, comm_.size(), o_.balance, splits_files(o_, source_) ? o_.piece_bytes() : 0);
    if (comm_.is_root()) log_split_files(work_, base, log_);
    if (!comm_.is_root()) {
      auto share = BlockCatalog::decode(base.blocks.encode_of_files(files_shared_with(work_, comm_.rank())));
      source_.listing.blocks = share ? std::move(*share) : BlockCatalog();
      source_.listing.blocks_of_all_files = false;
    }
    mine_ = work_.whole_files_of_rank(comm_.rank());
    pieces_ = work_.pieces_of_rank(comm_.rank());
    const auto verify_start = Clock::now();
    auto verified = verify_inputs();
    report_.set_stage_seconds("verify", seconds_since(verify_start));
    if (!verified) return verified;
    transforms_ = make_row_transforms(m_.filter_optimizer, m_.drop_slots, m_.embedding_dtypes, &quantization_);
    auto deltas = DeltaRows::read(inputs_.deltas);
    auto read = agree_on_first_error(comm_, deltas ? Status(Ok{}) : Status(deltas.error()), "merge-delta-headers");
    if (!read) return read;
    deltas_.emplace(std::move(deltas).value());
    if (comm_.is_root()) log_.stage("deltas: " + std::to_string(deltas_->rows()) + " rows to apply");
    if (m_.reshard != 0) {  // its own MergedExport: the stream's counts the evicted rows once
      MergedExport counted = merged_rows(m_, inputs_, *deltas_, "rank" + std::to_string(comm_.rank()) + "-count-");
      auto planned = plan_resharding(o_, base, mine_, work_.owners, transforms_,
                                     nullptr, inputs_.staging_dir, comm_,
                                     [&counted](const TensorOfFile& tensor) { return counted.rows_of(tensor); });
      if (!planned) return planned.error();
      reshard_ = std::move(planned).value();
    }
    report_.set_stage_seconds("plan", seconds_since(plan_start));
    return Ok{};
  }

  StreamRequest request() const override {
    uint64_t work_items = 0;
    for (const auto& items : work_.items) work_items += items.size();
    StreamRequest r{o_, source_, transforms_, mine_, pieces_, work_items, inputs_.staging_dir};
    r.reshard = reshard_ ? &*reshard_ : nullptr;
    return r;
  }

  // 3. this rank's share of the base merged, through the export's stream stage with the merged rows, and the rows
  // --evict-* left out as they were merged.
  StreamOutcome stream(const StreamRequest& request) override {
    InputVerifier verifier(streamed_inputs_);
    MergedExport merged = merged_rows(m_, inputs_, *deltas_, "rank" + std::to_string(comm_.rank()) + "-", &verifier);
    StreamRequest merging = request;
    merging.tensor_rows = [&merged](const TensorOfFile& tensor) {
      fault_point("merge");
      return merged.rows_of(tensor);
    };
    StreamOutcome streamed = sink_->stream(merging, comm_, log_);
    streamed.evicted = merged.evicted();
    streamed.judged_by_step = merged.judged_by_step();
    check_streamed_inputs(verifier, streamed, comm_);
    return streamed;
  }

  const Sink& sink() const override { return *sink_; }
  const QuantizationLedger& quantization() const override { return quantization_; }

  // 4, rank 0: every rank's results gathered as an export's (pipeline/rank_reports.h), the inputs checked
  // unchanged, then the metadata and the publish.
  int finish_on_root(BarrierOutcome& barrier, const StreamRequest& request, Clock::time_point) override {
    report_.set_stage_seconds("stream", barrier.seconds);
    const int status = collect_and_finish(barrier, request);
    discard();  // no-op after a successful publish
    return status;
  }

  void discard() override {
    if (staging_) staging_->discard();
  }

 private:
  // 2a: the base's whole files are hashed as their ranks stream them; this rank's go to its verifier.
  Status verify_inputs() {
    const CheckpointListing& base = inputs_.base;
    std::set<std::string> hashed_in_stream;
    for (size_t f = 0; f < base.files.size(); ++f) {
      if (!work_.split(f)) hashed_in_stream.insert(m_.base + "/" + base.files[f].name);
    }
    auto files = check_inputs_verify(m_, hashed_in_stream, comm_);
    if (!files) return files.error();
    std::set<std::string> mine;
    for (size_t f : mine_) mine.insert(base.files[f].name);
    for (const ManifestFile& f : files.value()) {
      if (mine.count(f.name)) streamed_inputs_[base.ckpt_dir + "/" + f.name] = {f.bytes, f.checksum, f.piece_bytes};
    }
    return Ok{};
  }

  int collect_and_finish(BarrierOutcome& barrier, const StreamRequest& request) {
    auto collected =
        collect_barrier(barrier, report_, inputs_.base.blocks, work_, o_.piece_bytes(), barrier.agreed == 0);
    if (!collected) return report_failure(collected.error(), report_);
    if (barrier.agreed != 0) return barrier.agreed;
    // the inputs were checksummed against their manifests, then read again to merge: still the same files now?
    for (size_t i = 0; i <= inputs_.deltas.size(); ++i) {
      auto unchanged = check_listing_unchanged(i == 0 ? inputs_.base : inputs_.deltas[i - 1]);
      if (!unchanged) return report_failure(unchanged.error(), report_);
    }
    Gathered& files = collected.value();
    // the files the ranks wrote together (--reshard), described as an export's, in place of the base's
    CheckpointListing listing = inputs_.base;
    auto described = sink_->describe_on_root(request, true, files.files, files.owner, files.shared, listing);
    if (!described) return report_failure(described.error(), report_);
    auto finished =
        finish_merge(m_, manifests_, inputs_.step, listing, std::move(files), *staging_, report_, start_, log_);
    if (!finished) return report_failure(finished.error(), report_);
    log_.stage("merged in " + format_seconds(seconds_since(start_)));
    return 0;
  }

  const MergeOptions& m_;
  Comm& comm_;
  RunReport& report_;
  Log log_;
  const Clock::time_point start_ = Clock::now();
  std::optional<StagingDir> staging_;     // rank 0 only; removed on every path that does not publish
  std::vector<ExportManifest> manifests_;  // rank 0: the base's, then the deltas'
  MergeInputs inputs_;                    // 1
  JobOptions o_;                          // 2: the options of the export's stream stage
  SourceDescription source_;
  WorkPlan work_;
  std::vector<size_t> mine_;       // this rank's whole files
  std::vector<WorkItem> pieces_;   // and its pieces of split files
  std::map<std::string, InputVerifier::Expected> streamed_inputs_;  // 2a: those of them its stream verifies
  QuantizationLedger quantization_;
  RowTransformChain transforms_;  // counts into `quantization_`: a MergeJob stays where it is made
  std::optional<DeltaRows> deltas_;
  std::optional<ReshardStage> reshard_;
  std::unique_ptr<Sink> sink_;
};

}  // namespace

ExitCode run_merge(const MergeOptions& m, Comm& comm) {
  RunReport report(m, comm.host(), comm.size());
  MergeJob job(m, comm, report);
  return run_job(job, comm, report);
}

}  // namespace recis_convert
