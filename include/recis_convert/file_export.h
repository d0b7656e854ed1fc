// Export of one data file: read and check its header, decide per tensor with the slot filter, and write the
// kept tensors into the staging directory with the copy engine. One FileResult per file travels to rank 0.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "recis_convert/checkpoint.h"
#include "recis_convert/copy_engine.h"
#include "recis_convert/error.h"
#include "recis_convert/safetensors.h"
#include "recis_convert/slot_filter.h"
#include "recis_convert/writeback.h"

namespace recis_convert {

struct FileResult {
  std::string name;                 // data file name, the same in the source and the export
  uint64_t source_bytes = 0;
  bool written = false;             // false when every tensor was dropped (the file is then not exported)
  uint64_t output_bytes = 0;
  uint64_t checksum = 0;            // XXH3-64 of the exported file
  std::vector<TensorInfo> kept;     // offsets as in the exported file
  std::vector<TensorInfo> dropped;  // offsets as in the source file
};

struct FileExportSettings {
  std::string staging_dir;             // where the exported file is created
  bool dry_run = false;                // read and plan only, write nothing
  WritebackQueue* writeback = nullptr; // takes each written file for a later fsync; nullptr: close without fsync
  bool quantize_int8 = false;          // --quantize-embeddings int8: `embedding` tensors as int8 rows
};

// A data file's checked header and the decision for each of its tensors (both export formats start here).
struct FileDecision {
  SafetensorsHeader header;
  std::vector<KeyClass> keys;  // per header tensor
  std::vector<bool> keep;      // per header tensor
};

// Reads the header of an open data file and decides each tensor. Every header key must be a block of this very
// file in the checkpoint's index, and must be classifiable (in tensorkey.json, or a dense "name^ " key); anything
// else means index, tensorkey.json and the data disagree, which is reported as bad input.
Result<FileDecision> decide_data_file(int fd, const CheckpointListing& listing, const DataFile& file,
                                      const OptimizerSlotFilter& filter);

// Every header key must be a block of this very file in the checkpoint's index, and must be classifiable
// (in tensorkey.json, or a dense "name^ " key); anything else means index, tensorkey.json and the data
// disagree, which is reported as bad input.
Result<FileResult> export_data_file(const CheckpointListing& listing, const DataFile& file,
                                    const OptimizerSlotFilter& filter, CopyEngine& engine,
                                    const FileExportSettings& settings);

std::string file_results_to_json(const std::vector<FileResult>& results);
Result<std::vector<FileResult>> file_results_from_json(const std::string& text);

}  // namespace recis_convert
