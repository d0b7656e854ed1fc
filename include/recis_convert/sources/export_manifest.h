// What merge needs of an export it reads (manifest.json, metadata/manifest.h): its kind and steps, its layout,
// each table's exported slots and serving dtype, the options it was made with, and the files it carries besides
// the tables (the dense network, fg.json, input_columns.json, assets), which a merge takes from the newest export.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"

namespace recis_convert {

struct ExportTable {
  std::vector<std::string> slots;  // as the manifest lists them
  std::string quantization;        // "int8_rowwise"..., "" when the rows are the source's
};

// A file of the export other than its data files and the metadata a merge writes anew.
struct CarriedFile {
  std::string name;  // path inside the export, e.g. "fg.json", "fx_user_model/user_model.pt"
  bool asset = false;  // listed under asset_files (else metadata_files)
};

struct ExportManifest {
  std::string dir;
  bool delta = false;                  // "kind": "delta"
  std::optional<int64_t> step;         // "step"
  std::optional<int64_t> base_step;    // a delta's "base_step"
  std::string lineage;                 // "source": "lineage" (manifest.h); "" in exports made before it was recorded
  bool hdf5 = false;                   // its tables are in model.h5
  std::map<std::string, ExportTable> tables;
  nlohmann::json options;              // "options" as recorded
  std::vector<CarriedFile> carried;
};

// A manifest field that must be a whole number ("step", "base_step"); nullopt when absent or anything else.
std::optional<int64_t> whole_number_field(const nlohmann::json& manifest, const char* key);

// `dir`/manifest.json, parsed strictly. No manifest: bad input "not an export directory"; a malformed one: bad
// input naming it.
Result<nlohmann::json> read_manifest_json(const std::string& dir);

// Reads `dir`/manifest.json. A missing or malformed manifest, or one without the fields above (an export made
// before they were recorded), is bad input naming it.
Result<ExportManifest> read_export_manifest(const std::string& dir);

}  // namespace recis_convert
