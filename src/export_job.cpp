#include "recis_convert/export_job.h"

#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <set>

#include "recis_convert/common/fault_injection.h"
#include "recis_convert/common/interrupt.h"
#include "recis_convert/common/log.h"
#include "recis_convert/dense/dense_stage.h"
#include "recis_convert/metadata/delta_base.h"
#include "recis_convert/metadata/export_files.h"
#include "recis_convert/common/checksum.h"
#include "recis_convert/metadata/metadata_stage.h"
#include "recis_convert/metadata/run_report.h"
#include "recis_convert/mpi/job_messages.h"
#include "recis_convert/plan/piece_plan.h"
#include "recis_convert/plan/rank_assignment.h"
#include "recis_convert/publish/resume_journal.h"
#include "recis_convert/publish/staging_reach.h"
#include "recis_convert/publish/serving_root.h"
#include "recis_convert/publish/staging.h"
#include "recis_convert/sinks/eviction_stage.h"
#include "recis_convert/sinks/shared_file_checksums.h"
#include "recis_convert/sinks/sink.h"
#include "recis_convert/sources/global_step.h"
#include "recis_convert/sources/source.h"
#include "recis_convert/transforms/job_transforms.h"

namespace recis_convert {
namespace {

// What rank 0 tells every rank after discovery.
struct Discovery {
  SourceDescription source;
  std::string export_dir;   // where the export is published: --export-dir, or --publish-root's ROOT/<version>
  std::string staging_dir;  // empty in a dry run
  ExportClock clock;        // RecIS: the global step of each table with a step_filter slot, and the export's step
  std::optional<int64_t> delta_base;  // --delta-since, resolved: the delta holds the rows updated after it
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Discovery, source, export_dir, staging_dir, clock, delta_base)

// What each rank tells rank 0 at the barrier.
// (Every other rank's file results follow it on their own: PackedFileResults.)
struct RankReport {
  std::optional<Error> error;
  std::vector<FileResult> results;  // rank 0's own (its report does not travel)
  double seconds = 0;
  uint64_t shared_bytes = 0;  // see StreamOutcome
  QuantizationLedger quantization;  // the tables this rank converted, with their error so far
  ResumeSavings resumed;             // --resume: what this rank adopted instead of exporting
  std::vector<PieceResult> pieces;   // the pieces of split files it wrote
  std::optional<PieceBytes> piece_bytes;  // model.h5: what it read and wrote, by its pieces
  std::string copy_path, copy_why;        // see StreamOutcome
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RankReport, error, results, seconds, shared_bytes, quantization, resumed, pieces,
                                   piece_bytes, copy_path, copy_why)

using Clock = std::chrono::steady_clock;

// The export's clock (global_step.h): the global step of each table that has a step_filter slot, and the export's
// step. --evict-older-than and --delta-since need it: each table's step is logged with where it came from, the
// tables without the slot are exported whole, with a warning, and a step that cannot be resolved is an error
// (for --evict-older-than, so is a checkpoint where no table has the slot). Otherwise the clock only gives the
// manifest its "step", which stays null when nothing records one.
Result<ExportClock> resolve_clock(const JobOptions& o, const SourceDescription& source, const Log& log) {
  const CheckpointListing& listing = source.listing;
  std::set<std::string> all, with_step_filter;
  std::string_view last;  // blocks come in key order, so a table's come together: one set insert per table
  for (size_t i = 0; i < listing.blocks.size(); ++i) {
    auto key = parse_sparse_key_view(listing.blocks[i].logical);
    if (!key) continue;
    if (key->child != last) all.emplace(key->child);
    last = key->child;
    if (key->slot == "step_filter") with_step_filter.emplace(key->child);
  }
  if (o.eviction.older_than && with_step_filter.empty()) {
    return bad_input(listing.ckpt_dir, "--evict-older-than: no table has a step_filter slot (RecIS's "
                                       "GlobalStepFilterHook records each row's last update step there)");
  }
  if (source.is_hugectr()) return ExportClock{};  // no global step either (the CLI refuses --delta-since)
  std::string whole;
  for (const auto& table : all) {
    if (!with_step_filter.count(table)) whole += (whole.empty() ? "" : ", ") + nlohmann::json(table).dump();
  }
  if (!whole.empty() && o.eviction.older_than) {
    log.warn("--evict-older-than does not apply to the tables without a step_filter slot: " + whole);
  }
  if (!whole.empty() && o.is_delta()) {
    log.warn("--delta-since: the tables without a step_filter slot are exported whole (\"delta\": \"full\" in "
             "the manifest): " + whole);
  }
  const bool needed = o.eviction.older_than || o.is_delta();
  auto steps = resolve_global_steps(listing.ckpt_dir, listing.ckpt_id,
                                    std::vector<std::string>(with_step_filter.begin(), with_step_filter.end()));
  if (!steps && needed) return steps.error();
  if (!steps) return ExportClock{};
  for (const auto& warning : steps.value().warnings) log.warn(warning);
  ExportClock clock = export_clock(std::move(steps).value());
  if (needed) {
    for (const auto& [table, step] : clock.tables) {
      log.stage("global step of " + nlohmann::json(table).dump() + ": " + std::to_string(step.step) + " (" +
                step.source + ")");
    }
  }
  if (!clock.step && o.is_delta()) {
    return bad_input(listing.ckpt_dir, "--delta-since: the checkpoint has no global step (extra.pt has no "
                                       "global_step and \"" + listing.ckpt_id + "\" is not named ckpt_<step>)");
  }
  return clock;
}

// --delta-since's base step (delta_base.h), checked against the checkpoint's step: a delta cannot go back in time.
Status check_delta(const JobOptions& o, int64_t base, const GlobalStep& step, const Log& log) {
  if (base >= step.step) {
    return usage_error("--delta-since " + o.delta_since + ": the delta would hold the rows updated after step " +
                       std::to_string(base) + ", but the checkpoint is at step " + std::to_string(step.step) + " (" +
                       step.source + "); a delta's base must be an earlier step");
  }
  log.stage("delta: the rows updated after step " + std::to_string(base) + ", up to step " +
            std::to_string(step.step) + " (" + step.source + ")");
  return Ok{};
}

// Stage 1 on rank 0: everything that can fail before any data moves fails here, with one message for all ranks.
Result<Discovery> discover_on_root(const JobOptions& o, const RowTransformChain& transforms,
                                   std::optional<StagingDir>& staging, ResumeState& resume, RunReport& report,
                                   const Log& log) {
  auto source = discover_source(o, transforms, log);
  if (!source) return source.error();
  report.set_checkpoint(source.value().listing, o.select == CheckpointSelect::kBest ? "best" : "latest",
                        source.value().selection);
  for (const auto& [path, what] : {std::pair{o.fg, "fg config"}, std::pair{o.mc, "mc config"}}) {
    if (path.empty()) continue;
    auto config = read_json_config(path, what);
    if (!config) return config.error();
  }
  Discovery discovery{std::move(source).value(), o.export_dir, "", {}, std::nullopt};
  // Outputs stay apart from every input (checked before the publish root or the staging directory is created).
  std::vector<NamedPath> inputs = o.inputs();
  if (!discovery.source.is_hugectr()) {
    inputs.push_back({discovery.source.listing.ckpt_dir, "the source checkpoint"});
    inputs.push_back({o.ckpt_dir + "/" + kCheckpointListFile, "the checkpoint list"});
  }
  for (const std::string& output : {o.publish_root, o.report}) {
    auto apart = check_apart_from_inputs(output, inputs);
    if (!apart) return apart.error();
  }
  if (!o.publish_root.empty()) {  // the version: --version-name, else the checkpoint's id
    const std::string& id = discovery.source.listing.ckpt_id;
    const std::string version = o.version_name.empty() ? id : o.version_name;
    auto named = check_version_name(version);
    if (!named) return usage_error("--publish-root: the checkpoint id " + named.error().message + "; give --version-name");
    if (!o.dry_run) {
      auto root = ensure_publish_root(o.publish_root);
      if (!root) return root.error();
      // versions.json is updated after the version is published: one it cannot read (a FIFO, another tool's file)
      // must fail the run now, before anything is published, not after
      auto versions = read_versions_file(o.publish_root);
      if (!versions) return versions.error();
    }
    discovery.export_dir = o.publish_root + "/" + version;
  }
  if (o.is_delta()) {
    auto base = resolve_delta_base(o.delta_since);
    if (!base) return base.error();
    discovery.delta_base = base.value();
  }
  auto clock = resolve_clock(o, discovery.source, log);
  if (!clock) return clock.error();
  discovery.clock = std::move(clock).value();
  if (discovery.delta_base) {
    auto checked = check_delta(o, *discovery.delta_base, *discovery.clock.step, log);
    if (!checked) return checked.error();
  }
  if (o.dry_run) return discovery;
  auto apart = check_apart_from_inputs(discovery.export_dir, inputs);
  if (!apart) return apart.error();
  std::vector<std::string> stale;
  bool existed = false;
  auto created = o.resume ? StagingDir::create_resumable(discovery.export_dir, o.overwrite, &stale, &existed)
                          : StagingDir::create(discovery.export_dir, o.overwrite, &stale);
  if (!created) return created.error();
  warn_removed_stale(stale, log);
  staging.emplace(std::move(created).value());
  discovery.staging_dir = staging->path();
  if (o.resume) {  // adopt what an interrupted run with the same options and source journaled, or start afresh
    auto fingerprint = run_fingerprint(job_config_json(o), discovery.source.listing);
    if (!fingerprint) return fingerprint.error();
    auto opened = open_resume_journal(staging->path(), fingerprint.value(), existed, log);
    if (!opened) return opened.error();
    resume = std::move(opened).value();
  }
  auto prepared = prepare_export_on_root(o, discovery.source, discovery.staging_dir);
  if (!prepared) return prepared.error();
  return discovery;
}

void log_plan(const JobOptions& o, const SourceDescription& source, const RowTransformChain& transforms, int ranks,
              const Log& log) {
  const size_t files = source.listing.files.size();
  std::string dtypes;  // "embeddings as int4 (item_id: fp16)"
  if (o.embedding_dtypes.any()) {
    dtypes = "embeddings as " + option_name(o.embedding_dtypes.all);
    std::string overrides;
    for (const auto& [table, dtype] : o.embedding_dtypes.tables) {
      overrides += (overrides.empty() ? " (" : ", ") + table + ": " + option_name(dtype);
    }
    dtypes += overrides.empty() ? "" : overrides + ")";
  }
  if (source.is_hugectr()) {
    const std::string layout = o.reshard != 0
                                   ? std::to_string(o.reshard) + " RecIS-layout files, part m of every table in file m"
                                   : "one RecIS-layout file per table";
    log.stage("plan: the rows of " + std::to_string(files) + " HugeCTR table(s) split over " + std::to_string(ranks) +
              " ranks, " + (o.format == ExportFormat::kHdf5 ? "into model.h5" : layout) +
              (dtypes.empty() ? "" : ", " + dtypes) + (o.eviction.any() ? ", evicting rows" : "") +
              (o.dry_run ? " (dry run)" : ""));
    return;
  }
  std::vector<std::string> what;  // e.g. "into model.h5", "filtering: optimizer state", "embeddings as int4"
  if (o.format == ExportFormat::kHdf5) what.push_back("into model.h5");
  if (transforms.is_identity() && !o.selects_rows() && o.reshard == 0 && o.format != ExportFormat::kHdf5) {
    what.push_back("copying byte for byte");
  }
  if (transforms.drops_anything()) {
    std::string filtering = "filtering:";
    if (o.filter_optimizer) filtering += " optimizer state";
    for (const auto& slot : o.drop_slots) filtering += " " + slot;
    what.push_back(filtering);
  }
  if (!dtypes.empty()) what.push_back(dtypes);
  if (o.is_delta()) what.push_back("a delta: the changed rows only");
  if (o.eviction.any()) what.push_back("evicting stale rows");
  if (o.reshard != 0) what.push_back("resharding every table into " + std::to_string(o.reshard) + " parts");
  std::string mode;
  for (const auto& w : what) mode += (mode.empty() ? "" : ", ") + w;
  log.stage("plan: " + std::to_string(files) + " files over " + std::to_string(ranks) + " ranks (" +
            balance_name(o.balance) + "), " + mode + (o.dry_run ? " (dry run)" : ""));
}

// Whether a file too large for one rank's fair share is split into pieces that several ranks write (piece_plan.h):
// a RecIS checkpoint's files into safetensors, whose output layout follows from the input header alone. Not where
// a file's output depends on rows another pass decides (eviction, a delta: their kept rows are counted per part),
// is routed elsewhere (--reshard), or goes into model.h5 (which spreads its own write pieces: hdf5_layout.h).
bool splits_files(const JobOptions& o, const SourceDescription& source) {
  return !source.is_hugectr() && o.format == ExportFormat::kSafetensors && o.reshard == 0 && !o.selects_rows();
}

void log_split_files(const WorkPlan& work, const CheckpointListing& listing, const Log& log) {
  for (size_t f = 0; f < listing.files.size(); ++f) {
    if (!work.split(f)) continue;
    log.stage("plan: " + listing.files[f].name + " (" + format_bytes(static_cast<double>(listing.files[f].size)) +
              ") is split into " + std::to_string(work.pieces[f]) + " pieces of --chunk-mib over the ranks");
  }
}

// Rank 0: per table, how many rows the eviction rules leave out (what --dry-run reports before anything is written).
// With --delta-since, the rows it exports: those changed after the base and not evicted.
void log_evictions(const JobOptions& o, const EvictionCounts& counts,
                   const std::map<std::string, GlobalStep>& global_steps, std::optional<int64_t> delta_base,
                   const Log& log) {
  for (const auto& [table, t] : counts.tables) {
    std::string rules;
    auto step = global_steps.find(table);
    if (o.eviction.older_than && step != global_steps.end()) {
      rules = "last updated more than " + std::to_string(*o.eviction.older_than) + " steps before " +
              std::to_string(step->second.step) + " (" + step->second.source + ")";
    }
    if (o.eviction.l2_below) {
      char threshold[32];
      std::snprintf(threshold, sizeof threshold, "%g", static_cast<double>(*o.eviction.l2_below));
      rules += (rules.empty() ? "" : ", or ") + std::string("L2 norm below ") + threshold;
    }
    const std::string prefix = o.dry_run ? "dry run: " : "";
    if (delta_base) {
      log.stage(prefix + "delta: " + std::to_string(t.rows - t.evicted) + " of " + std::to_string(t.rows) +
                " rows of " + nlohmann::json(table).dump() + " updated after step " + std::to_string(*delta_base) +
                (rules.empty() ? "" : " and not evicted (" + rules + ")"));
      continue;
    }
    log.stage(prefix + "evict " + std::to_string(t.evicted) + " of " + std::to_string(t.rows) + " rows of " +
              nlohmann::json(table).dump() + ": " + rules);
  }
}

// Rank 0 at the barrier: every rank's results and errors (each error said once), into the run record.
struct Gathered {
  std::vector<FileResult> files;
  SharedFileDigests shared;          // the files every rank wrote into (shared_file_checksums.h)
  std::map<std::string, int> owner;  // file -> the rank that exported it
  QuantizationLedger quantization;   // every rank's, merged (exactly: the order does not matter)
  ResumeSavings resumed;             // every rank's, summed in rank order
  bool ok = true;
};
// Which files' blocks `rank` gets (rank 0 keeps every block: it is sent none).
std::vector<bool> files_shared_with(const WorkPlan& work, int rank) {
  return rank == 0 ? std::vector<bool>(work.owners.size(), false) : work.files_read_by(rank);
}

// Rank 0: which block of `blocks` (every block) each position of each other rank's share is. One pass over the
// blocks (a million of them), each to the ranks that read its file.
std::vector<std::vector<uint32_t>> share_positions(const BlockCatalog& blocks, const WorkPlan& work, int ranks) {
  std::vector<std::vector<int>> readers(work.owners.size());  // per file, the ranks other than 0 that read it
  for (int rank = 1; rank < ranks; ++rank) {
    for (const WorkItem& item : work.items[static_cast<size_t>(rank)]) {
      if (readers[item.file].empty() || readers[item.file].back() != rank) readers[item.file].push_back(rank);
    }
  }
  std::vector<std::vector<uint32_t>> out(static_cast<size_t>(ranks));
  for (size_t i = 0; i < blocks.size(); ++i) {
    const uint32_t file = blocks[i].file;
    if (file == BlockCatalog::kNotIndexed) continue;
    for (int rank : readers[file]) out[static_cast<size_t>(rank)].push_back(static_cast<uint32_t>(i));
  }
  return out;
}

// Rank 0: each split file's checksum, joined from its pieces' in order (checksum.h). Every piece of the output must
// be there once, in order.
Status join_piece_checksums(std::vector<FileResult>& files, std::map<std::string, std::vector<PieceResult>>& pieces,
                            uint64_t piece_bytes) {
  for (FileResult& f : files) {
    auto found = pieces.find(f.name);
    if (found == pieces.end() || !f.written) continue;
    std::vector<PieceResult>& parts = found->second;
    std::sort(parts.begin(), parts.end(), [](const PieceResult& a, const PieceResult& b) { return a.piece < b.piece; });
    std::vector<uint64_t> checksums;
    for (const PieceResult& p : parts) {
      if (p.first_checksum_piece != checksums.size() && !p.checksums.empty()) break;
      checksums.insert(checksums.end(), p.checksums.begin(), p.checksums.end());
    }
    if (checksums.size() != PieceChecksum::count(f.output_bytes, piece_bytes)) {
      return Error{ExitCode::kInternal, f.name, "the pieces' checksums do not cover the file"};
    }
    f.checksum = PieceChecksum::combine(checksums);
  }
  return Ok{};
}

Result<Gathered> collect_reports(std::vector<RankReport>& reports, std::vector<PackedFileResults>& packed,
                                 RunReport& report, const BlockCatalog& blocks, const WorkPlan& work,
                                 uint64_t piece_bytes, bool join_checksums) {
  Gathered out;
  const auto shares = share_positions(blocks, work, static_cast<int>(reports.size()));
  std::map<std::string, std::vector<PieceResult>> pieces;  // split file -> its pieces' results
  std::vector<RankWork> ranks;
  std::set<std::string> printed;  // e.g. every rank reports the same interruption: say it once
  for (size_t r = 0; r < reports.size(); ++r) {
    RankReport& got = reports[r];
    if (got.error && printed.insert(got.error->describe()).second) {
      const std::string line =
          got.error->describe() + (got.error->code == ExitCode::kInterrupted ? "; nothing was published" : "");
      Log::error(line);
      report.add_error(line);
    }
    auto results = packed[r].unpack([&](uint32_t i) -> std::optional<std::string_view> {
      if (i >= shares[r].size()) return std::nullopt;
      return blocks[shares[r][i]].key;
    });
    if (!results) {
      return Error{ExitCode::kInternal, "", "corrupt rank-report message: the file results of rank " + std::to_string(r)};
    }
    packed[r] = PackedFileResults();
    out.quantization.add(got.quantization);
    out.resumed.files += got.resumed.files;
    out.resumed.pieces += got.resumed.pieces;
    out.resumed.bytes += got.resumed.bytes;
    out.resumed.seconds += got.resumed.seconds;
    for (auto& f : got.results) results->push_back(std::move(f));
    got.results.clear();
    RankWork rank_work{static_cast<int>(r), results->size(), got.shared_bytes, got.shared_bytes, got.seconds,
                       got.error ? got.error->describe() : "", got.copy_path};
    std::set<std::string> split;  // the files whose piece 0 this rank wrote: it reports them too
    for (const auto& p : got.pieces) split.insert(p.file);
    for (auto& f : *results) {
      out.owner[f.name] = static_cast<int>(r);
      if (!split.count(f.name)) {  // a split file's bytes are its pieces', each its writer's
        rank_work.bytes_in += f.source_bytes;
        rank_work.bytes_out += f.written ? f.output_bytes : 0;
      }
      out.files.push_back(std::move(f));  // a million tensors: moved, not copied
    }
    for (auto& p : got.pieces) {
      rank_work.bytes_in += p.bytes_in;
      rank_work.bytes_out += p.bytes_out;
      pieces[p.file].push_back(std::move(p));
    }
    if (got.piece_bytes) {  // model.h5: a rank's pieces need not be its files'
      rank_work.bytes_in = got.piece_bytes->read;
      rank_work.bytes_out = got.piece_bytes->written;
    }
    ranks.push_back(rank_work);
  }
  report.set_ranks(ranks);
  if (!reports.empty() && !reports[0].copy_path.empty()) report.set_copy(reports[0].copy_path, reports[0].copy_why);
  if (join_checksums) {  // a real run in which every rank succeeded: every piece is there
    auto joined = join_piece_checksums(out.files, pieces, piece_bytes);
    if (!joined) return joined.error();
  }
  return out;
}

// --resume: the files adopted from an interrupted run, said once and recorded in the run record.
void report_resumed(const ResumeSavings& resumed, RunReport& report, const Log& log) {
  report.set_resumed(resumed.files, resumed.pieces, resumed.bytes, resumed.seconds);
  if (resumed.files == 0 && resumed.pieces == 0) return;
  log.stage("--resume: adopted " + std::to_string(resumed.files) + " files" +
            (resumed.pieces ? " and " + std::to_string(resumed.pieces) + " pieces of split files" : "") + " (" +
            format_bytes(static_cast<double>(resumed.bytes)) + ") of the interrupted run, which took it " +
            format_seconds(resumed.seconds) + " to export them");
}

// One line per table converted to a serving dtype: what it cost in accuracy (also in manifest.json).
void log_quantization(const ExportSummary& s, const Log& log) {
  for (const auto& [table, converted] : s.quantization.tables) {
    log.stage("quantized " + nlohmann::json(table).dump() + " " + converted.source_dtype() + " dim " +
              std::to_string(converted.dim) + " -> " + quantization_name(converted.dtype) + ", " +
              std::to_string(converted.error.rows) + " rows: " + describe(converted.error.figures()));
  }
}

// Stages 5 (metadata and the dense network) and 6 (publish) on rank 0, once every rank succeeded.
Status finish_on_root(const JobOptions& o, const std::string& export_dir, const SourceDescription& source,
                      Gathered gathered,
                      std::map<std::string, TableEvictionRecord> evictions, const ExportClock& clock,
                      std::optional<int64_t> delta_base, StagingDir* staging, const Log& log,
                      Clock::time_point start, RunReport& report) {
  const auto summary_start = Clock::now();
  auto summary = summarize_export(o, source, std::move(gathered.files), std::move(gathered.quantization), log);
  if (!summary) return summary.error();
  summary.value().evictions = std::move(evictions);
  summary.value().clock = clock;
  summary.value().delta_base = delta_base;
  summary.value().shared = std::move(gathered.shared);
  report.set_stage_seconds("summarize", seconds_since(summary_start));
  if (o.dry_run) {
    log_dry_run(o, export_dir, summary.value(), gathered.owner, log);
    return Ok{};
  }
  fault_point("metadata");
  const auto metadata_start = Clock::now();
  const std::string& dir = staging->path();
  auto manifest = write_export_metadata(o, source, summary.value(), dir);
  if (!manifest) return manifest.error();
  const auto dense_start = Clock::now();
  auto dense = export_dense_network(o, source, dir, log);
  if (!dense) return dense.error();
  if (!o.dense_model.empty()) report.set_stage_seconds("dense", seconds_since(dense_start));
  for (auto& file : dense.value().files) manifest.value().metadata_files.push_back(std::move(file));
  manifest.value().dense_network = std::move(dense.value().network);
  report.set_stage_seconds("metadata", seconds_since(metadata_start));
  report.set_stage_seconds("total", seconds_since(start));
  auto written = write_manifest_and_record(o, manifest.value(), dir, report);
  if (!written) return written.error();
  log.stage(std::string("metadata: ") +
            (o.format == ExportFormat::kHdf5 ? "" : "index, tensorkey.json, " + std::string(kTorchRankFile) + ", ") +
            (o.fg.empty() ? "" : "fg.json, ") + (o.mc.empty() ? "" : "input_columns.json, ") + "manifest.json (" +
            std::to_string(summary.value().tables.size()) + " tables)");

  fault_point("publish");
  if (auto stop = interruption()) return *stop;
  if (o.resume && !remove_tree(staging->path() + "/" + kJournalDir)) {  // the journal is not part of the export
    return output_error(staging->path() + "/" + kJournalDir, "cannot remove the --resume journal");
  }
  auto published = staging->publish(o.overwrite);
  if (!published) return published.error();
  warn_removed_stale(staging->remove_dead_runs(), log);
  const ExportSummary& s = summary.value();
  log_quantization(s, log);
  if (!s.evictions.empty()) {  // the bytes a row of each table weighs in the export, from a tensor of each slot
    std::map<std::string, std::map<std::string, uint64_t>> row_bytes;  // table -> slot -> bytes
    for (const KeptTensor& k : s.kept) {
      auto key = parse_sparse_key_view(k.logical);
      if (!key || k.tensor->shape.empty() || k.tensor->shape[0] == 0) continue;
      row_bytes[std::string(key->child)][std::string(key->slot)] = k.tensor->nbytes() / k.tensor->shape[0];
    }
    for (const auto& [table, e] : s.evictions) {
      uint64_t per_row = 0;
      for (const auto& [slot, bytes] : row_bytes[table]) per_row += bytes;
      log.stage("evicted " + std::to_string(e.evicted_rows) + " rows of " + nlohmann::json(table).dump() + " (" +
                format_bytes(static_cast<double>(e.evicted_rows * per_row)) + ")");
    }
  }
  const double seconds = seconds_since(start);
  log.stage("published " + export_dir + ": " + std::to_string(manifest.value().files.size()) + " files, " +
            format_bytes(s.bytes_in) + " in, " + format_bytes(s.bytes_out) + " out, " + format_bytes(s.bytes_dropped) +
            " dropped, " + format_seconds(seconds) + ", " + format_bytes(seconds > 0 ? s.bytes_in / seconds : 0) + "/s");
  if (!o.publish_root.empty()) {  // the new version in the serving root: versions.json, current, --keep
    VersionRecord version;
    version.version = export_dir.substr(o.publish_root.size() + 1);
    if (clock.step) version.step = clock.step->step;
    version.published_at = utc_now();
    version.checkpoint = resolved_path(source.listing.ckpt_dir);
    measure_version(export_dir, version);
    auto recorded = record_published_version(o.publish_root, std::move(version), o.keep ? std::optional<uint64_t>(o.keep) : std::nullopt, log);
    if (!recorded) return recorded.error();
    log.stage(o.publish_root + "/" + kCurrentLink + " -> " + recorded.value().current + " (" +
              std::to_string(recorded.value().versions.size()) + " versions)");
  }
  return Ok{};
}

// Rank 0 reports a failure once: on stderr and in the run record.
int report_failure(const Error& error, RunReport& report) {
  Log::error(error.describe());
  report.add_error(error.describe());
  return static_cast<int>(error.code);
}

// The export itself, in the user's fixed shape; run_export() below adds the --report file around it.
ExitCode export_checkpoint(const JobOptions& o, Comm& comm, RunReport& report) {
  const auto start = Clock::now();
  Log log(comm.rank(), o.quiet, o.verbose);
  std::optional<StagingDir> staging;  // rank 0 only; removed on every path that does not publish (but --resume's)
  ResumeState resume;                 // rank 0 with --resume: the journal's lock, held to the end
  QuantizationLedger quantization;  // filled as this rank converts rows; travels to rank 0 in its report
  const RowTransformChain transforms =
      make_row_transforms(o.filter_optimizer, o.drop_slots, o.embedding_dtypes, &quantization);

  // 1. discover: rank 0 resolves and checks the source and creates the staging directory; every rank learns both,
  // but not the blocks: rank 0 keeps them all, and each other rank gets those of its own files after the plan.
  fault_point("discover");
  BlockCatalog all_blocks;
  auto discovery = broadcast_result<Discovery>(
      comm,
      [&] {
        auto found = discover_on_root(o, transforms, staging, resume, report, log);
        if (found) all_blocks = std::move(found.value().source.listing.blocks);
        return found;
      },
      "discovery");
  auto completed = discovery ? complete_source(discovery.value().source, transforms) : discovery.error();
  if (completed && !discovery.value().staging_dir.empty()) {  // every node writes into it: all must reach it
    completed = check_staging_reaches_every_rank(comm, discovery.value().staging_dir, discovery.value().export_dir);
  }
  if (!completed) {
    if (comm.is_root()) report_failure(completed.error(), report);
    if (staging) staging->discard();
    return completed.error().code;
  }
  SourceDescription& source = discovery.value().source;
  const CheckpointListing& listing = source.listing;
  if (o.eviction.older_than || o.is_delta()) report.set_global_steps(discovery.value().clock.tables);
  std::vector<uint64_t> sizes;
  uint64_t total_bytes = 0;
  for (const auto& f : listing.files) {
    sizes.push_back(f.size);
    total_bytes += f.size;
  }
  log.stage(source.kind() + " " + listing.ckpt_dir + ": " + std::to_string(listing.files.size()) + " data files, " +
            format_bytes(static_cast<double>(total_bytes)) + ", " + std::to_string(all_blocks.sparse_size()) +
            " sparse blocks");
  report.set_stage_seconds("discover", seconds_since(start));

  // 2. plan: the same work plan on every rank (whole files, and pieces of the files too large for one rank's fair
  // share); each rank learns the blocks of the files it reads
  const auto plan_start = Clock::now();
  const WorkPlan work = plan_work(sizes, comm.size(), o.balance, splits_files(o, source) ? o.piece_bytes() : 0);
  const std::vector<int>& assignment = work.owners;
  const std::vector<size_t> mine = work.whole_files_of_rank(comm.rank());
  const std::vector<WorkItem> my_pieces = work.pieces_of_rank(comm.rank());
  log_plan(o, source, transforms, comm.size(), log);
  log_split_files(work, listing, log);
  auto share = scatter_encoded_from_root<BlockCatalog>(
      comm, [&](int rank) { return all_blocks.encode_of_files(files_shared_with(work, rank)); }, "block-share");
  if (!share) {  // a message this program wrote and cannot read, on one rank: no collective may wait for it
    Log::error(share.error().describe());
    comm.abort(static_cast<int>(share.error().code));
  }
  source.listing.blocks = comm.is_root() ? std::move(all_blocks) : std::move(share).value();
  source.listing.blocks_of_all_files = comm.is_root();
  report.set_stage_seconds("plan", seconds_since(plan_start));

  // A stage between the plan and the stream failed, alike on every rank: rank 0 says it once, nothing is published.
  auto stop_before_stream = [&](const Error& error) {
    if (comm.is_root()) report_failure(error, report);
    if (staging) staging->discard();
    return error.code;
  };

  // 2b. with --evict-*: which rows of each part stay (counted now; applied by the write pass)
  EvictionCounts evictions;
  const ExportClock& clock = discovery.value().clock;
  const std::optional<int64_t> delta_base = discovery.value().delta_base;
  if (o.selects_rows() && !source.is_hugectr()) {
    const auto select_start = Clock::now();
    EvictionSettings settings;
    settings.rules = o.eviction;
    for (const auto& [table, step] : clock.tables) settings.global_steps[table] = step.step;
    settings.changed_after = delta_base;
    auto counted = count_evictions(settings, source.listing, mine, assignment, discovery.value().staging_dir, comm);
    if (!counted) return stop_before_stream(counted.error());
    evictions = std::move(counted).value();
    if (comm.is_root()) log_evictions(o, evictions, clock.tables, delta_base, log);
    report.set_stage_seconds("select", seconds_since(select_start));
  }

  // 2c. with --reshard: where every kept row goes (rank 0 creates the output files)
  std::optional<ReshardStage> reshard;
  std::optional<HugectrRowPlan> hugectr_rows;  // HugeCTR: eviction and resharding in one stage
  if (source.is_hugectr() && (o.eviction.any() || o.reshard != 0) && o.format == ExportFormat::kSafetensors) {
    const auto rows_start = Clock::now();
    auto planned = plan_hugectr_rows(o, *source.hugectr, discovery.value().staging_dir, comm);
    if (!planned) return stop_before_stream(planned.error());
    hugectr_rows = std::move(planned).value();
    evictions.tables = hugectr_rows->tables;
    if (comm.is_root() && o.eviction.any()) log_evictions(o, evictions, clock.tables, delta_base, log);
    if (hugectr_rows->layout) {
      reshard.emplace();
      reshard->layout = std::move(hugectr_rows->layout);
    }
    report.set_stage_seconds("select", seconds_since(rows_start));
  } else if (o.reshard != 0 && !source.is_hugectr()) {  // (HugeCTR tables into model.h5: planned in the stream)
    const auto reshard_start = Clock::now();
    // into model.h5 the plan places rows; there are no output files to create
    const std::string files_dir = o.format == ExportFormat::kHdf5 ? std::string() : discovery.value().staging_dir;
    auto planned = plan_resharding(o, source.listing, mine, assignment, transforms,
                                   o.selects_rows() ? &evictions : nullptr, files_dir, comm);
    if (!planned) return stop_before_stream(planned.error());
    reshard = std::move(planned).value();
    report.set_stage_seconds("reshard", seconds_since(reshard_start));
  }

  // 3. stream: each rank's share through the row transforms into the export format
  const auto stream_start = Clock::now();
  uint64_t work_items = 0;
  for (const auto& items : work.items) work_items += items.size();
  const StreamRequest request{o,
                              source,
                              transforms,
                              mine,
                              my_pieces,
                              work_items,
                              discovery.value().staging_dir,
                              o.selects_rows() ? &evictions.selections : nullptr,
                              reshard ? &*reshard : nullptr,
                              hugectr_rows ? &*hugectr_rows : nullptr};
  StreamOutcome streamed = stream_into_export(request, comm, log);
  const double my_seconds = seconds_since(stream_start);
  if (comm.is_root() && !streamed.evictions.empty()) {  // HugeCTR tables into model.h5: counted in the stream
    evictions.tables = streamed.evictions;
    log_evictions(o, evictions, clock.tables, delta_base, log);
  }
  if (!comm.is_root()) {  // done with the blocks: room for the report below
    source.listing.blocks = BlockCatalog();
    ::malloc_trim(0);  // and the heap the files' headers left fragmented goes back, not just to malloc
  }

  // 4. barrier: every rank agrees on success; rank 0 gathers every result and error
  fault_point("barrier");
  if (!streamed.failure) {
    if (auto stop = interruption()) {
      streamed.failure = *stop;
      comm.announce_failure();
    }
  }
  const int agreed = comm.agree_on_status(streamed.failure ? static_cast<int>(streamed.failure->code) : 0).status;
  auto reports = gather_to_root(
      comm,
      RankReport{streamed.failure, std::move(streamed.results), my_seconds, streamed.shared_bytes, quantization,
                 streamed.resumed, std::move(streamed.pieces), streamed.piece_bytes, streamed.copy_path,
                 streamed.copy_why},
      "rank-report");
  auto packed = gather_encoded_to_root(comm, std::move(streamed.packed), "file-results");
  const double stream_seconds = seconds_since(stream_start);
  // 4b. the files every rank wrote into together: every rank checksums a share of their pieces
  Result<SharedFileDigests> shared = SharedFileDigests{};
  double checksum_seconds = 0;
  if (agreed == 0) {
    const auto checksum_start = Clock::now();
    shared = checksum_shared_files(comm, comm.is_root() ? shared_output_files(request) : std::vector<std::string>{},
                                   discovery.value().staging_dir, o.piece_bytes());
    checksum_seconds = seconds_since(checksum_start);
    report.set_stage_seconds("checksum", checksum_seconds);
  }

  // 5. metadata and the dense network, 6. publish: rank 0, once every rank succeeded
  int final_status = agreed;
  if (comm.is_root()) {
    Gathered gathered;
    auto collected = !reports  ? Result<Gathered>(reports.error())
                     : !packed ? Result<Gathered>(packed.error())
                               : collect_reports(reports.value(), packed.value(), report, listing.blocks, work,
                                                 o.piece_bytes(), !o.dry_run && agreed == 0);
    if (collected && !shared) collected = shared.error();
    if (collected) {
      gathered = std::move(collected).value();
      gathered.shared = std::move(shared).value();
      if (o.resume) report_resumed(gathered.resumed, report, log);
    } else {
      final_status = report_failure(collected.error(), report);
    }
    report.set_stage_seconds("collect", seconds_since(stream_start) - stream_seconds - checksum_seconds);
    const size_t streamed_files = gathered.files.size();  // source files (HugeCTR: none; its tables come below)
    auto finished_stream =
        finish_stream_on_root(request, final_status == 0, gathered.files, gathered.owner, gathered.shared);
    if (!finished_stream) final_status = report_failure(finished_stream.error(), report);
    if (reshard && final_status == 0 && o.format == ExportFormat::kSafetensors) {  // the output files, not the source's
      source.listing.files.clear();
      for (const auto& f : gathered.files) source.listing.files.push_back(DataFile{f.name, f.output_bytes});
      source.listing.blocks = reshard_catalog(*reshard->layout);
      source.listing.blocks_of_all_files = true;
    }
    report.set_dropped(gathered.files);
    report.set_stage_seconds("stream", stream_seconds);
    // every rank has streamed: the count pass's bitmaps are not part of the export
    if (final_status == 0 && !evictions.kept_rows_dir.empty() && !remove_tree(evictions.kept_rows_dir)) {
      final_status = report_failure(output_error(evictions.kept_rows_dir, "cannot remove the kept-row bitmaps"), report);
    }

    if (final_status == 0) {
      log.stage("streamed " + std::to_string(reshard ? streamed_files : gathered.files.size()) + " files in " +
                format_seconds(stream_seconds));
      std::map<std::string, TableEvictionRecord> evicted;  // a delta's rows left out are not all evicted ones
      for (const auto& [table, t] : delta_base ? std::map<std::string, TableEviction>() : evictions.tables) {
        auto step = clock.tables.find(table);
        evicted[table] = TableEvictionRecord{
            t.evicted, o.eviction.older_than && step != clock.tables.end() ? std::optional<GlobalStep>(step->second)
                                                                           : std::nullopt};
      }
      auto finished = finish_on_root(o, discovery.value().export_dir, source, std::move(gathered), std::move(evicted), clock, delta_base,
                                     staging ? &*staging : nullptr, log, start, report);
      if (!finished) final_status = report_failure(finished.error(), report);
    }
    if (staging && final_status != 0 && staging->resumable()) {
      log.warn("--resume: kept " + staging->path() + "; the same command with --resume goes on from it");
    }
    if (staging) staging->discard();  // no-op after a successful publish, and for --resume's staging directory
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
