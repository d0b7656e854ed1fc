#include "recis_convert/sources/source.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <set>

#include "recis_convert/sources/checkpoint_selection.h"

namespace recis_convert {
namespace {

}  // namespace

std::vector<std::string> source_table_names(const SourceDescription& source) {
  std::set<std::string> names;
  if (source.hugectr) {
    for (const auto& t : source.hugectr->tables) names.insert(t.name);
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

Result<SourceDescription> discover_source(const JobOptions& o, const RowTransformChain& transforms, const Log& log) {
  SourceDescription source;
  if (o.source == SourceKind::kHugectr) {
    auto model = describe_hugectr_model(o, transforms);
    if (!model) return model.error();
    source.hugectr = std::move(model).value();
    source.listing = hugectr_listing(*source.hugectr);
    source.selection = "HugeCTR graph " + o.graph + ", " + std::to_string(source.hugectr->tables.size()) +
                       " sparse model(s)";
    auto named = check_named_tables(o.embedding_dtypes, source, source.kind());
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
  auto named = check_named_tables(o.embedding_dtypes, source, source.kind());
  if (!named) return named.error();
  return source;
}

Status complete_source(SourceDescription& source, const RowTransformChain& transforms) {
  return source.hugectr ? lay_out_hugectr_tables(*source.hugectr, transforms) : Status(Ok{});
}

}  // namespace recis_convert
