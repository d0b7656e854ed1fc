#include "recis_convert/plan/merge_chain.h"

#include <nlohmann/json.hpp>

namespace recis_convert {
namespace {


std::string quantization_text(const std::string& q) { return q.empty() ? "unquantized" : q; }

}  // namespace

Result<int64_t> check_merge_chain(const ExportManifest& base, const std::vector<ExportManifest>& deltas) {
  if (base.delta) return bad_input(base.dir, "the base of a merge must be a full export; this is a delta");
  if (!base.step) return bad_input(base.dir, "the base export has no \"step\", so no delta can follow it");
  if (deltas.empty()) return bad_input(base.dir, "no delta to merge into it");
  if (base.hdf5) return bad_input(base.dir, "merge reads safetensors exports; this one is model.h5");
  if (base.lineage.empty()) {
    return bad_input(base.dir, "records no lineage (\"source\": \"lineage\"): it was made before exports recorded "
                               "which training run they come from, so no delta can be checked against it");
  }
  int64_t running = *base.step;
  for (const ExportManifest& d : deltas) {
    if (!d.delta) return bad_input(d.dir, "is a full export, not a delta (a merge starts from one base)");
    if (d.lineage != base.lineage) {
      return bad_input(d.dir, "comes from the training run " + (d.lineage.empty() ? std::string("(not recorded)")
                                                                                   : quoted_name(d.lineage)) +
                                  ", the base from " + quoted_name(base.lineage) +
                                  ": a delta applies only to exports of its own run");
    }
    if (d.hdf5) return bad_input(d.dir, "merge reads safetensors exports; this one is model.h5");
    if (*d.base_step > running) {
      return bad_input(d.dir, "holds the rows updated after step " + std::to_string(*d.base_step) +
                                  ", but the merge so far is at step " + std::to_string(running) +
                                  ": the updates in between would be lost");
    }
    if (*d.step <= running) {
      return bad_input(d.dir, "is at step " + std::to_string(*d.step) + ", not after the merge so far (step " +
                                  std::to_string(running) + "): deltas go in order");
    }
    for (const auto& [table, t] : d.tables) {
      auto in_base = base.tables.find(table);
      if (in_base == base.tables.end()) {
        return bad_input(d.dir, "has table " + quoted_name(table) + ", which the base export does not");
      }
      if (in_base->second.slots != t.slots) {
        return bad_input(d.dir, "exports other slots of table " + quoted_name(table) + " than the base (" +
                                    nlohmann::json(t.slots).dump() + " against " +
                                    nlohmann::json(in_base->second.slots).dump() + ")");
      }
      if (in_base->second.quantization != t.quantization) {
        return bad_input(d.dir, "table " + quoted_name(table) + " is " + quantization_text(t.quantization) +
                                    ", the base's " + quantization_text(in_base->second.quantization) +
                                    ": a merge needs the same serving dtype per table");
      }
    }
    running = *d.step;
  }
  return running;
}

}  // namespace recis_convert
