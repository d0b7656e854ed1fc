#include "recis_convert/sources/source.h"

#include <sys/stat.h>

#include "recis_convert/sources/checkpoint_selection.h"

namespace recis_convert {

Result<SourceDescription> discover_source(const JobOptions& o, const RowTransformChain& transforms, const Log& log) {
  SourceDescription source;
  if (o.source == SourceKind::kHugectr) {
    auto model = describe_hugectr_model(o, transforms);
    if (!model) return model.error();
    source.hugectr = std::move(model).value();
    source.listing = hugectr_listing(*source.hugectr);
    source.selection = "HugeCTR graph " + o.graph + ", " + std::to_string(source.hugectr->tables.size()) +
                       " sparse model(s)";
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
  return source;
}

Status complete_source(SourceDescription& source, const RowTransformChain& transforms) {
  return source.hugectr ? lay_out_hugectr_tables(*source.hugectr, transforms) : Status(Ok{});
}

}  // namespace recis_convert
