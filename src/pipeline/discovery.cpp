#include "recis_convert/pipeline/discovery.h"

#include <set>
#include <vector>

#include "recis_convert/metadata/delta_base.h"
#include "recis_convert/metadata/export_files.h"
#include "recis_convert/publish/serving_root.h"
#include "recis_convert/sinks/sink.h"

namespace recis_convert {
namespace {

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
  // no step per table or row either (the CLI refuses --delta-since): a HugeCTR model has no step, a DCP checkpoint
  // the one in its name
  if (source.has_row_tables()) return ExportClock{{}, source.step};
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
}  // namespace

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
  if (discovery.source.kind == SourceKind::kRecis) {
    inputs.push_back({discovery.source.listing.ckpt_dir, "the source checkpoint"});
    inputs.push_back({o.ckpt_dir + "/" + kCheckpointListFile, "the checkpoint list"});
  } else if (discovery.source.kind == SourceKind::kDcp) {
    inputs.push_back({o.ckpt_dir, "the checkpoint directory --ckpt-dir"});
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
    auto fingerprint = run_fingerprint(job_config_json(o), discovery.source);
    if (!fingerprint) return fingerprint.error();
    auto opened = open_resume_journal(staging->path(), fingerprint.value(), existed, log);
    if (!opened) return opened.error();
    resume = std::move(opened).value();
  }
  auto prepared = make_sink(o, discovery.source)->prepare_on_root(o, discovery.source, discovery.staging_dir);
  if (!prepared) return prepared.error();
  return discovery;
}

}  // namespace recis_convert
