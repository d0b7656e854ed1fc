#include "recis_convert/pipeline/finish_export.h"

#include <nlohmann/json.hpp>

#include "recis_convert/common/fault_injection.h"
#include "recis_convert/common/interrupt.h"
#include "recis_convert/dense/dense_stage.h"
#include "recis_convert/metadata/export_files.h"
#include "recis_convert/publish/serving_root.h"

namespace recis_convert {
namespace {

using Clock = std::chrono::steady_clock;

// One line per table converted to a serving dtype: what it cost in accuracy (also in manifest.json).
void log_quantization(const ExportSummary& s, const Log& log) {
  for (const auto& [table, converted] : s.quantization.tables) {
    log.stage("quantized " + nlohmann::json(table).dump() + " " + converted.source_dtype() + " dim " +
              std::to_string(converted.dim) + " -> " + quantization_name(converted.dtype) + ", " +
              std::to_string(converted.error.rows) + " rows: " + describe(converted.error.figures()));
  }
}

}  // namespace

Status finish_on_root(const JobOptions& o, const std::string& export_dir, const SourceDescription& source,
                      Gathered gathered, std::map<std::string, TableEvictionRecord> evictions,
                      const ExportClock& clock, std::optional<int64_t> delta_base, StagingDir* staging,
                      const Log& log, Clock::time_point start, RunReport& report) {
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

int finish_export(ExportRun& run, BarrierOutcome& barrier, const StreamRequest& request, Clock::time_point stream_start) {
  const JobOptions& o = run.o;
  SourceDescription& source = run.discovery.source;
  RunReport& report = run.report;
  int status = barrier.agreed;
  Gathered gathered;
  auto collected =
      collect_barrier(barrier, report, source.listing.blocks, run.work, o.piece_bytes(), !o.dry_run && status == 0);
  if (collected) {
    gathered = std::move(collected).value();
    if (o.resume) report_resumed(gathered.resumed, report, run.log);
  } else {
    status = report_failure(collected.error(), report);
  }
  report.set_stage_seconds("collect", seconds_since(stream_start) - barrier.seconds - barrier.checksum_seconds);
  const size_t streamed_files = gathered.files.size();  // source files (HugeCTR: none; its tables come below)
  auto finished_stream = run.sink->describe_on_root(request, status == 0, gathered.files, gathered.owner,
                                                    gathered.shared, source.listing);
  if (!finished_stream) status = report_failure(finished_stream.error(), report);
  if (status == 0 && source.row_tables) {  // a RecIS checkpoint's files are checked by each reader as it reads them
    auto unchanged = check_row_table_inputs(*source.row_tables);
    if (!unchanged) status = report_failure(unchanged.error(), report);
  }
  report.set_dropped(gathered.files);
  report.set_stage_seconds("stream", barrier.seconds);
  // every rank has streamed: the count pass's bitmaps are not part of the export
  if (status == 0 && !run.evictions.kept_rows_dir.empty() && !remove_tree(run.evictions.kept_rows_dir)) {
    status = report_failure(output_error(run.evictions.kept_rows_dir, "cannot remove the kept-row bitmaps"), report);
  }
  if (status != 0) return status;
  run.log.stage("streamed " + std::to_string(run.reshard ? streamed_files : gathered.files.size()) + " files in " +
                format_seconds(barrier.seconds));
  const ExportClock& clock = run.discovery.clock;
  std::map<std::string, TableEvictionRecord> evicted;  // a delta's rows left out are not all evicted ones
  for (const auto& [table, t] : run.discovery.delta_base ? std::map<std::string, TableEviction>() : run.evictions.tables) {
    auto step = clock.tables.find(table);
    evicted[table] = TableEvictionRecord{
        t.evicted, o.eviction.older_than && step != clock.tables.end() ? std::optional<GlobalStep>(step->second)
                                                                       : std::nullopt};
  }
  auto finished = finish_on_root(o, run.discovery.export_dir, source, std::move(gathered), std::move(evicted), clock,
                                 run.discovery.delta_base, run.staging ? &*run.staging : nullptr, run.log, run.start,
                                 report);
  return finished ? 0 : report_failure(finished.error(), report);
}

}  // namespace recis_convert
