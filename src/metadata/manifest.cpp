#include "recis_convert/metadata/manifest.h"

#include <map>
#include <nlohmann/json.hpp>

#include "recis_convert/common/checksum.h"

namespace recis_convert {

std::map<std::string, DroppedCount> dropped_by_slot(const std::vector<FileResult>& files) {
  std::map<std::string, DroppedCount> out;
  for (const auto& f : files) {
    for (const auto& t : f.dropped) {
      // "child.slot/part_r_R" -> slot; dense "name^ " -> name
      std::string what = t.name;
      size_t part = what.rfind("/part_");
      if (part != std::string::npos) {
        what = what.substr(0, part);
        what = what.substr(what.rfind('.') == std::string::npos ? 0 : what.rfind('.') + 1);
      } else if (what.size() > 2 && what.compare(what.size() - 2, 2, "^ ") == 0) {
        what.resize(what.size() - 2);
      }
      auto& count = out[what];
      count.tensors += 1;
      count.bytes += t.nbytes();
    }
  }
  return out;
}

namespace {
// A serving dtype as the manifest names it: null for none (as before there was a choice), else its
// quantization_name.
nlohmann::ordered_json serving_dtype_json(ServingDType dtype) {
  if (dtype == ServingDType::kNone) return nullptr;
  return quantization_name(dtype);
}
}  // namespace

const char* checksum_key(uint64_t bytes, uint64_t piece_bytes) {
  return PieceChecksum::count(bytes, piece_bytes) > 1 ? "xxh3_64_pieces" : "xxh3_64";
}

std::string make_manifest_json(const ManifestInput& input) {
  using ordered_json = nlohmann::ordered_json;
  ordered_json quantize_tables = ordered_json::object();
  for (const auto& [table, dtype] : input.embedding_dtypes.tables) quantize_tables[table] = serving_dtype_json(dtype);
  ordered_json root;
  // 2: a file of more than one piece has "xxh3_64_pieces" (checksum.h) instead of "xxh3_64"
  root["manifest_version"] = 2;
  root["tool"] = {{"name", "recis-convert"}, {"version", input.tool_version}};
  root["source"] = {{"checkpoint", input.source_checkpoint}, {"ckpt_id", input.ckpt_id}};
  if (!input.lineage.empty()) root["source"]["lineage"] = input.lineage;
  root["kind"] = input.delta_base ? "delta" : "full";
  if (input.delta_base) root["base_step"] = *input.delta_base;
  root["step"] = input.clock.step ? ordered_json(input.clock.step->step) : ordered_json();
  if (!input.merged_from.empty()) root["merged_from"] = input.merged_from;
  root["options"] = {{"filter_optimizer", input.filter_optimizer},
                     {"drop_slots", input.drop_slots},
                     {"quantize_embeddings", serving_dtype_json(input.embedding_dtypes.all)},
                     {"quantize_tables", quantize_tables},
                     {"evict_older_than", input.eviction.older_than ? ordered_json(*input.eviction.older_than)
                                                                    : ordered_json()},
                     {"evict_l2_below", input.eviction.l2_below ? ordered_json(*input.eviction.l2_below)
                                                                : ordered_json()},
                     {"reshard", input.reshard ? ordered_json(input.reshard) : ordered_json()},
                     {"delta_since", input.delta_base ? ordered_json(*input.delta_base) : ordered_json()},
                     {"fg", input.fg_path.empty() ? ordered_json() : ordered_json(input.fg_path)},
                     {"mc", input.mc_path.empty() ? ordered_json() : ordered_json(input.mc_path)}};

  ordered_json files = ordered_json::array();
  ordered_json dense = ordered_json::array();
  uint64_t bytes_in = 0, bytes_out = 0, dropped_bytes = 0, dropped_tensors = 0;
  std::vector<std::string> skipped;
  for (const auto& f : input.files) {
    bytes_in += f.source_bytes;
    for (const auto& t : f.dropped) {
      ++dropped_tensors;
      dropped_bytes += t.nbytes();
    }
    if (!f.written) {
      skipped.push_back(f.name);
      continue;
    }
    bytes_out += f.output_bytes;
    files.push_back({{"name", f.name}, {"bytes", f.output_bytes}, {checksum_key(f.output_bytes, input.checksum_piece_bytes), Checksum::hex(f.checksum)},
                     {"tensors", f.kept.size()}});
    for (const auto& t : f.kept) {
      if (t.name.size() > 2 && t.name.compare(t.name.size() - 2, 2, "^ ") == 0) {
        dense.push_back({{"name", t.name.substr(0, t.name.size() - 2)}, {"dtype", t.dtype_spelling},
                         {"shape", t.shape}, {"file", f.name}});
      }
    }
  }
  root["checksum_piece_bytes"] = input.checksum_piece_bytes;
  root["data_files"] = std::move(files);
  root["data_files_not_written"] = skipped;  // every tensor dropped

  ordered_json metadata = ordered_json::array();
  for (const auto& m : input.metadata_files) {
    metadata.push_back({{"name", m.name}, {"bytes", m.bytes}, {checksum_key(m.bytes, m.in_pieces ? input.checksum_piece_bytes : 0), Checksum::hex(m.checksum)}});
  }
  root["metadata_files"] = std::move(metadata);
  ordered_json assets = ordered_json::array();
  for (const auto& a : input.asset_files) {
    assets.push_back({{"name", a.name}, {"bytes", a.bytes}, {checksum_key(a.bytes, a.in_pieces ? input.checksum_piece_bytes : 0), Checksum::hex(a.checksum)}});
  }
  root["asset_files"] = std::move(assets);

  ordered_json tables = ordered_json::object();
  for (const auto& t : input.tables) {
    tables[t.child] = {{"rows", t.rows}, {"dim", t.dim}, {"dtype", t.dtype}, {"slots", t.slots}, {"parts", t.parts}};
    if (!t.quantization.empty()) tables[t.child]["quantization"] = t.quantization;
    auto evicted = input.evictions.find(t.child);
    if (evicted != input.evictions.end()) {
      tables[t.child]["evicted_rows"] = evicted->second.evicted_rows;
      if (evicted->second.global_step) {
        tables[t.child]["global_step"] = {{"step", evicted->second.global_step->step},
                                          {"from", evicted->second.global_step->source}};
      }
    }
    if (input.delta_base) {
      auto step = input.clock.tables.find(t.child);
      const bool changed = step != input.clock.tables.end();
      tables[t.child]["delta"] = changed ? "changed" : "full";
      if (changed) tables[t.child]["global_step"] = {{"step", step->second.step}, {"from", step->second.source}};
    }
    auto converted = input.quantization.tables.find(t.child);
    if (converted != input.quantization.tables.end()) {
      const QuantizationFigures f = converted->second.error.figures();
      tables[t.child]["source_dtype"] = converted->second.source_dtype();
      tables[t.child]["quantization_error"] = {{"max_abs", f.max_abs},
                                               {"mean_abs", f.mean_abs},
                                               {"rmse", f.rmse},
                                               {"max_row_rel_l2", f.max_row_rel_l2}};
    }
  }
  root["tables"] = std::move(tables);
  root["dense_tensors"] = std::move(dense);
  if (input.dense_network) {
    const DenseNetworkRecord& network = *input.dense_network;
    ordered_json record = {{"file", network.file}, {"weights", "the checkpoint's"},
                           {"frozen", network.not_frozen.empty()}, {"scored", network.not_frozen.empty()}};
    if (!network.not_frozen.empty()) record["not_frozen_because"] = network.not_frozen;
    root["dense_network"] = std::move(record);
  }

  ordered_json by_slot = ordered_json::object();
  for (const auto& [slot, count] : dropped_by_slot(input.files)) {
    by_slot[slot] = {{"tensors", count.tensors}, {"bytes", count.bytes}};
  }
  root["totals"] = {{"bytes_in", bytes_in},
                    {"bytes_out", bytes_out},
                    {"dropped_tensors", dropped_tensors},
                    {"dropped_bytes", dropped_bytes},
                    {"dropped_by_slot", by_slot}};
  return root.dump(2) + "\n";
}

}  // namespace recis_convert
