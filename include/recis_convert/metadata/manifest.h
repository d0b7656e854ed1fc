// manifest.json: what the export contains, for people and for `verify`. It depends only on the source and the
// content options, never on how many ranks ran; run_record.json holds what may differ between runs.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/sinks/file_export.h"
#include "recis_convert/metadata/metadata.h"
#include "recis_convert/sources/global_step.h"
#include "recis_convert/transforms/quantization_error.h"
#include "recis_convert/transforms/row_eviction.h"

namespace recis_convert {

struct ExtraFile {
  std::string name;  // path inside the export, e.g. "index"
  uint64_t bytes = 0;
  uint64_t checksum = 0;
  bool in_pieces = false;  // checksummed in the export's pieces (model.h5), not whole
};

// What eviction did to one table (--evict-older-than, --evict-l2-below).
struct TableEvictionRecord {
  uint64_t evicted_rows = 0;
  std::optional<GlobalStep> global_step;  // the clock of --evict-older-than, if it applied to the table
};

// The dense network of the export (manifest.json's "dense_network"). Its weights are always the checkpoint's; it is
// frozen and its sample outputs recorded only where the plugin's libtorch could load it.
struct DenseNetworkRecord {
  std::string file;        // e.g. "fx_user_model/user_model.pt"
  std::string not_frozen;  // "" when frozen and scored; else why not, in one line
};

struct ManifestInput {
  std::string tool_version;
  std::string source_checkpoint;  // resolved ckpt_<step> directory (absolute)
  // The training run the rows come from: the directory holding the RecIS checkpoint (resolved), "" for a HugeCTR
  // model. A merge carries its base's; it applies only deltas of the same lineage (plan/merge_chain.h).
  std::string lineage;
  std::string ckpt_id;
  bool filter_optimizer = false;
  std::vector<std::string> drop_slots;
  EmbeddingDTypes embedding_dtypes;
  QuantizationLedger quantization;  // every converted table and its error, merged over the ranks
  EvictionRules eviction;
  std::map<std::string, TableEvictionRecord> evictions;  // per table a rule applied to
  // "kind" and "step": a full export, or with delta_base a delta of the rows updated after it. A delta's tables
  // with a step (clock.tables: those with step_filter) hold the changed rows; the others are whole.
  ExportClock clock;
  std::optional<int64_t> delta_base;
  std::vector<std::string> merged_from;  // merge: the base export, then the deltas (commands/merge.h)
  uint32_t reshard = 0;  // --reshard M; 0: the source's parts
  std::string fg_path;  // "" when not given
  std::string mc_path;
  // The pieces of the checksums (checksum.h; --chunk-mib), of the data files and of the ExtraFiles in_pieces.
  // manifest.json lists a file of more than one piece with "xxh3_64_pieces", any other with "xxh3_64".
  uint64_t checksum_piece_bytes = 0;
  std::vector<FileResult> files;   // all data files, sorted by name (written or not)
  std::vector<ExtraFile> metadata_files;
  std::vector<ExtraFile> asset_files;  // --asset-files, copied as they are
  std::vector<TableSummary> tables;
  std::optional<DenseNetworkRecord> dense_network;
};

// What the filter dropped, by slot ("exp_avg"...) or dense name ("sparse_adamw_step"...).
struct DroppedCount {
  uint64_t tensors = 0;
  uint64_t bytes = 0;
};
std::map<std::string, DroppedCount> dropped_by_slot(const std::vector<FileResult>& files);

// The key of a file's checksum in manifest.json: "xxh3_64_pieces" for a file of more than one piece of
// piece_bytes (the XXH3-64 of its pieces' XXH3-64s, checksum.h), else "xxh3_64" (the file's own XXH3-64).
const char* checksum_key(uint64_t bytes, uint64_t piece_bytes);

// Pretty-printed JSON with a trailing newline.
std::string make_manifest_json(const ManifestInput& input);

}  // namespace recis_convert
