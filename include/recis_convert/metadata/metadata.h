// The export's RecIS metadata files, regenerated for the exported tensors only (recis-checkpoint.md 6, 7, 8, 20.2):
//   index           {"block_index":{key->file#},"file_index":{file->file#}}, keys sorted bytewise, compact
//   tensorkey.json  {part key -> "child@slot^slice"} of exported sparse keys, sorted, 4-space indent
//   torch_rank_weights_embs_table_multi_shard.json   RTP entries of exported tensors, sorted, 4-space indent
// All three are nlohmann dumps without a trailing newline, as RecIS writes them. They are written as text here
// (metadata/json_text.h), byte for byte what nlohmann's dump gives, without building a tree of a million nodes.
//
// Deliberate differences from RecIS:
// - file numbers follow the sorted file names (RecIS: merge order of the saving ranks), so the export does not
//   depend on how many ranks ran;
// - the torch_rank json lists no model.pt weights (the dense network ships as TorchScript, not in safetensors);
// - the lower-case "bool" dtype maps to "bool" (RecIS: "").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/common/error.h"
#include "recis_convert/metadata/json_text.h"
#include "recis_convert/metadata/key_order.h"
#include "recis_convert/sinks/file_export.h"
#include "recis_convert/transforms/serving_dtype.h"

namespace recis_convert {

// Only results with written == true are part of the export. Results must be sorted by name; `kept` is their
// kept tensors in key order (key_order.h), each sparse when it has a tensorkey.json name. Each file is written
// into a TextOut (json_text.h) as it is made; make_* return the whole text.
void write_index_json(const std::vector<FileResult>& exported, const std::vector<KeptTensor>& kept, TextOut& out);
void write_tensorkey_json(const std::vector<KeptTensor>& kept, TextOut& out);
void write_torch_rank_json(const std::vector<KeptTensor>& kept, TextOut& out);
// The one of the three named `name` (kIndexFile, kTensorKeyFile or kTorchRankFile).
void write_recis_metadata_file(std::string_view name, const std::vector<FileResult>& exported,
                               const std::vector<KeptTensor>& kept, TextOut& out);
std::string make_recis_metadata_file(std::string_view name, const std::vector<FileResult>& exported,
                                     const BlockCatalog& blocks);
std::string make_index_json(const std::vector<FileResult>& exported);
std::string make_tensorkey_json(const std::vector<FileResult>& exported, const BlockCatalog& blocks);
std::string make_torch_rank_json(const std::vector<FileResult>& exported, const BlockCatalog& blocks);

// One exported table (a hashtable child), summed over its parts (slices).
struct TableSummary {
  std::string child;
  uint64_t rows = 0;
  uint64_t dim = 0;             // last dimension of `embedding`, 0 if not exported
  std::string dtype;            // dtype of `embedding`, "" if not exported
  std::vector<std::string> slots;  // exported slots: id, embedding, then the others sorted
  uint64_t parts = 0;
  std::string quantization;     // the serving dtype's quantization_name ("fp16", "int4_rowwise"...), "" if none
};

// Checks the tables across all files: every slot of a part has as many rows as the part's `id`, and every part
// has an `id`. Errors are kBadInput naming the checkpoint directory.
// A table converted to a serving dtype (`dtypes`) has the dim of its source rows, not of the stored ones.
// `kept`: the kept tensors of every file, written or not (key_order.h).
Result<std::vector<TableSummary>> summarize_tables(const std::vector<KeptTensor>& kept, const std::string& ckpt_dir,
                                                   const EmbeddingDTypes& dtypes = {});

}  // namespace recis_convert
