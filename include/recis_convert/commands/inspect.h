// `recis-convert inspect PATH`: what a checkpoint (or an export) holds, without MPI and without copying anything:
// tables with rows, dim, dtype and bytes per slot, the optimizer, the data files, and the dense tensors of
// model.pt. Reads only headers and metadata, through the same checked readers the export uses. PATH may also be a
// PyTorch Distributed Checkpoint (sources/dcp_checkpoint.h: TorchEasyRec's model.ckpt-<step>/ and model
// directories): its tables with their sharding layout and managed-collision buffers, and its dense tensors.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"

namespace recis_convert {

struct InspectedTable {
  std::string child;
  uint64_t rows = 0;
  uint64_t dim = 0;
  std::string dtype;                        // of `embedding`
  uint64_t parts = 0;
  std::map<std::string, uint64_t> slot_bytes;  // slot -> bytes over all parts
  std::string layout;                          // a DCP table's chunks (dcp_table_layout), "" otherwise
  std::vector<std::string> managed_collision;  // a DCP table's _mch_* buffers
};

struct InspectedTensor {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  uint64_t bytes = 0;
};

struct Inspection {
  std::string path;          // as given
  std::string kind;          // "checkpoint", "export" or "DCP checkpoint"
  std::string ckpt_dir;      // the resolved directory
  std::string selection;     // how ckpt_dir was found from path
  std::string optimizer;     // e.g. "adamw", from the sparse_<name>_* state; "" if none
  uint64_t data_files = 0;
  uint64_t data_bytes = 0;
  std::vector<InspectedTable> tables;
  bool slot_sizes_known = true;           // false for an HDF5 export (its manifest lists slots, not sizes)
  std::vector<InspectedTensor> scalars;   // dense "name^ " tensors of the sparse files (optimizer steps, ...)
  std::vector<InspectedTensor> dense;     // model.pt, when present (a DCP checkpoint's dense tensors)
  std::string dense_file;                 // its path, "" if none (a DCP checkpoint: its directory)
  nlohmann::json manifest;                // an export's manifest.json (null for a checkpoint)
};

// Reads the checkpoint or export at `path`. Errors are kBadInput naming the file.
Result<Inspection> inspect_path(const std::string& path);

std::string inspection_text(const Inspection& inspection);
nlohmann::ordered_json inspection_json(const Inspection& inspection);

}  // namespace recis_convert
