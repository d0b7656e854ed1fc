#include "recis_convert/sources/export_manifest.h"

#include <set>

#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/strict_json.h"
#include "recis_convert/sources/checkpoint.h"

namespace recis_convert {
std::optional<int64_t> whole_number_field(const nlohmann::json& manifest, const char* key) {
  if (!manifest.is_object()) return std::nullopt;
  const auto found = manifest.find(key);
  if (found == manifest.end() || !found->is_number_integer() || found->get<int64_t>() < 0) return std::nullopt;
  return found->get<int64_t>();
}

Result<nlohmann::json> read_manifest_json(const std::string& dir) {
  const std::string path = dir + "/manifest.json";
  if (!is_regular_file(path)) return bad_input(dir, "not an export directory (it has no manifest.json)");
  auto text = read_small_file(path, 1ull << 30);
  if (!text) return text.error();
  auto parsed = parse_strict_json(text.value(), path, "manifest");
  if (!parsed) return parsed.error();
  return std::move(parsed).value().value;
}

Result<ExportManifest> read_export_manifest(const std::string& dir) {
  const std::string path = dir + "/manifest.json";
  auto parsed = read_manifest_json(dir);
  if (!parsed) return parsed.error();
  const nlohmann::json& root = parsed.value();
  ExportManifest out;
  out.dir = dir;
  try {
    const std::string kind = root.at("kind").get<std::string>();
    if (kind != "full" && kind != "delta") return bad_input(path, "has an unknown \"kind\" \"" + kind + "\"");
    out.delta = kind == "delta";
    out.step = whole_number_field(root, "step");
    out.base_step = whole_number_field(root, "base_step");
    if (out.delta && (!out.step || !out.base_step)) {
      return bad_input(path, "is a delta without a whole-number \"step\" and \"base_step\"");
    }
    out.options = root.at("options");
    if (root.contains("source") && root["source"].is_object() && root["source"].contains("lineage")) {
      out.lineage = root["source"]["lineage"].get<std::string>();
    }
    for (const auto& [table, entry] : root.at("tables").items()) {
      ExportTable t;
      t.slots = entry.at("slots").get<std::vector<std::string>>();
      if (entry.contains("quantization")) t.quantization = entry.at("quantization").get<std::string>();
      out.tables.emplace(table, std::move(t));
    }
    static const std::set<std::string> kWrittenAnew = {kIndexFile, kTensorKeyFile, kTorchRankFile};
    for (const auto& entry : root.at("metadata_files")) {
      const std::string name = entry.at("name").get<std::string>();
      if (name == "model.h5") out.hdf5 = true;
      if (!kWrittenAnew.count(name) && name != "model.h5") out.carried.push_back(CarriedFile{name, false});
    }
    if (root.contains("asset_files")) {
      for (const auto& entry : root.at("asset_files")) {
        out.carried.push_back(CarriedFile{entry.at("name").get<std::string>(), true});
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return bad_input(path, std::string("is not a manifest this tool can merge: ") + e.what() +
                               " (exports made before manifests recorded \"kind\" cannot be merged)");
  }
  for (const auto& f : out.carried) {
    if (f.name.empty() || f.name[0] == '/' || f.name.find("..") != std::string::npos) {
      return bad_input(path, "names \"" + f.name + "\", which is not a path inside the export");
    }
  }
  return out;
}

}  // namespace recis_convert
