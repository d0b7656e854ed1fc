#include "recis_convert/pipeline/job_log.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

namespace recis_convert {

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
  if (source.has_row_tables()) {
    const std::string layout = o.reshard != 0
                                   ? std::to_string(o.reshard) + " RecIS-layout files, part m of every table in file m"
                                   : "one RecIS-layout file per table";
    log.stage("plan: the rows of " + std::to_string(files) + std::string(source.is_hugectr() ? " HugeCTR" : " DCP") + " table(s) split over " + std::to_string(ranks) +
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
  return !source.has_row_tables() && o.format == ExportFormat::kSafetensors && o.reshard == 0 && !o.selects_rows();
}

void log_split_files(const WorkPlan& work, const CheckpointListing& listing, const Log& log) {
  for (size_t f = 0; f < listing.files.size(); ++f) {
    if (!work.split(f)) continue;
    log.stage("plan: " + listing.files[f].name + " (" + format_bytes(static_cast<double>(listing.files[f].size)) +
              ") is split into " + std::to_string(work.pieces[f]) + " pieces of --chunk-mib over the ranks");
  }
}

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

}  // namespace recis_convert
