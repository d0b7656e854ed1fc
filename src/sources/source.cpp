#include "recis_convert/sources/source.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <set>

#include "recis_convert/sources/checkpoint_selection.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/sources/dcp_export.h"
#include "recis_convert/sources/hugectr_export.h"

namespace recis_convert {
std::string SourceDescription::what() const {
  switch (kind) {
    case SourceKind::kHugectr: return "HugeCTR model";
    case SourceKind::kDcp: return "Distributed Checkpoint";
    case SourceKind::kRecis: break;
  }
  return "checkpoint";
}

std::vector<std::string> source_table_names(const SourceDescription& source) {
  std::set<std::string> names;
  if (source.row_tables) {
    for (const auto& t : source.row_tables->tables) names.insert(t.name);
  } else {
    for (size_t i = 0; i < source.listing.blocks.size(); ++i) {
      if (auto key = parse_sparse_key_view(source.listing.blocks[i].logical)) names.emplace(key->child);
    }
  }
  return std::vector<std::string>(names.begin(), names.end());
}

Status check_named_tables(const EmbeddingDTypes& dtypes, const SourceDescription& source, const std::string& kind) {
  if (dtypes.tables.empty()) return Ok{};
  const std::vector<std::string> tables = source_table_names(source);
  const std::set<std::string> known(tables.begin(), tables.end());
  for (const auto& [table, dtype] : dtypes.tables) {
    if (known.count(table)) continue;
    std::string listed;
    constexpr size_t kListed = 20;  // a model may have thousands
    for (size_t i = 0; i < tables.size() && i < kListed; ++i) {
      listed += (i ? ", " : "") + nlohmann::json(tables[i]).dump();
    }
    if (tables.size() > kListed) listed += " and " + std::to_string(tables.size() - kListed) + " more";
    return Error{ExitCode::kUsage, "",
                 "--quantize-table " + nlohmann::json(table).dump() + ": the " + kind +
                     " has no such table; it has " + (tables.empty() ? std::string("none") : listed)};
  }
  return Ok{};
}

namespace {

// --source dcp: the checkpoint --ckpt-dir names, or its model directory's latest (dcp_checkpoint.h) or, with
// --select best, the model.ckpt-<step> of the best evaluated step.
Result<SourceDescription> discover_dcp(const JobOptions& o, const RowTransformChain& transforms, const Log& log) {
  std::string path = o.ckpt_dir, selection;
  if (o.select == CheckpointSelect::kBest) {
    auto choice = select_best_checkpoint(o.ckpt_dir, o.eval_log, o.metric, o.metric_order,
                                         kTorchEasyRecCheckpointPrefix);
    if (!choice) return choice.error();
    path = o.ckpt_dir + "/" + choice.value().ckpt_id;
    selection = choice.value().reason;
    log.stage("selected " + choice.value().ckpt_id + ": " + selection);
  }
  auto location = locate_dcp_checkpoint(path);
  if (!location) return location.error();
  auto metadata = read_dcp_metadata(location.value().dcp_dir);
  if (!metadata) return metadata.error();
  auto checkpoint = describe_dcp_checkpoint(location.value(), std::move(metadata).value());
  if (!checkpoint) return checkpoint.error();
  auto tables = dcp_row_tables(checkpoint.value(), transforms);
  if (!tables) return tables.error();
  SourceDescription source;
  source.kind = SourceKind::kDcp;
  source.row_tables = std::move(tables).value();
  auto stamped = stamp_row_table_inputs(*source.row_tables);
  if (!stamped) return stamped.error();
  source.listing = row_tables_listing(*source.row_tables);
  const DcpLocation& where = checkpoint.value().location;
  source.listing.ckpt_dir = where.checkpoint_dir;  // model.ckpt-<step>, or the DCP directory itself
  const std::string named = split_path(where.checkpoint_dir).base;
  if (where.step) source.step = GlobalStep{*where.step, named};
  source.dense = checkpoint.value().dense;
  const bool given = resolved_path(o.ckpt_dir) == resolved_path(where.checkpoint_dir) ||
                     resolved_path(o.ckpt_dir) == resolved_path(where.dcp_dir);
  source.selection = !selection.empty() ? selection
                     : given            ? "named by --ckpt-dir"
                                        : "the largest step in " + o.ckpt_dir + ", " + named;
  return source;
}

}  // namespace

Result<SourceDescription> discover_source(const JobOptions& o, const RowTransformChain& transforms, const Log& log) {
  if (o.source == SourceKind::kDcp) {
    auto source = discover_dcp(o, transforms, log);
    if (!source) return source.error();
    auto named = check_named_tables(o.embedding_dtypes, source.value(), source.value().what());
    if (!named) return named.error();
    return source;
  }
  SourceDescription source;
  if (o.source == SourceKind::kHugectr) {
    auto model = describe_hugectr_model(o, transforms);
    if (!model) return model.error();
    source.kind = SourceKind::kHugectr;
    source.row_tables = std::move(model).value();
    auto stamped = stamp_row_table_inputs(*source.row_tables);
    if (!stamped) return stamped.error();
    source.listing = row_tables_listing(*source.row_tables);
    source.selection = "HugeCTR graph " + o.graph + ", " + std::to_string(source.row_tables->tables.size()) +
                       " sparse model(s)";
    auto named = check_named_tables(o.embedding_dtypes, source, source.what());
    if (!named) return named.error();
    return source;
  }
  std::string ckpt_arg = o.ckpt_dir;
  if (o.select == CheckpointSelect::kBest) {
    auto choice = select_best_checkpoint(o.ckpt_dir, o.eval_log, o.metric, o.metric_order);
    if (!choice) return choice.error();
    ckpt_arg = o.ckpt_dir + "/" + choice.value().ckpt_id;
    source.selection = choice.value().reason;
    log.stage("selected " + choice.value().ckpt_id + ": " + source.selection);
  }
  auto listing = discover_checkpoint(ckpt_arg);
  if (!listing) return listing.error();
  source.listing = std::move(listing).value();
  if (source.selection.empty()) {
    struct stat st {};
    const bool given = ::stat((ckpt_arg + "/" + kIndexFile).c_str(), &st) == 0;  // as discover_checkpoint decides
    source.selection =
        given ? "named by --ckpt-dir" : "the latest, named last in " + o.ckpt_dir + "/" + kCheckpointListFile;
  }
  auto named = check_named_tables(o.embedding_dtypes, source, source.what());
  if (!named) return named.error();
  return source;
}

Status complete_source(SourceDescription& source, const RowTransformChain& transforms) {
  return source.row_tables ? lay_out_row_tables(*source.row_tables, transforms) : Status(Ok{});
}

}  // namespace recis_convert
