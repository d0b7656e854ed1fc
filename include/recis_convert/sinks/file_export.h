// Export of one data file: read and check its header, decide per tensor with the slot filter, and write the
// kept tensors into the staging directory with the copy engine. One FileResult per file travels to rank 0.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/sinks/copy_engine.h"
#include "recis_convert/common/error.h"
#include "recis_convert/formats/safetensors.h"
#include "recis_convert/plan/eviction_plan.h"
#include "recis_convert/sinks/file_layout.h"
#include "recis_convert/transforms/row_transform.h"
#include "recis_convert/sinks/writeback.h"

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

// What the writer of one piece of a split file did (piece_plan.h): the checksums of the output's pieces it wrote,
// from `first_checksum_piece` on (rank 0 joins every writer's in order: the file's checksum), and its bytes.
struct PieceResult {
  std::string file;
  uint32_t piece = 0;
  uint32_t pieces = 0;  // the file is split into
  uint64_t first_checksum_piece = 0;
  std::vector<uint64_t> checksums;
  uint64_t bytes_in = 0;   // source bytes read (the header aside)
  uint64_t bytes_out = 0;  // output bytes written
};

// A tensor whose rows are not (only) the data file's own: a merge's (sources/merged_export.h), the base's rows
// upserted with the deltas'. `from`: the rows that stand in for the tensor's (none: its own); `selection`: its
// part's kept rows among them (none: all).
struct TensorRows {
  std::optional<RowsFrom> from;
  std::shared_ptr<const PartSelection> selection;
};
// Asked for each tensor of a data file (open as `fd` while its rows are written) once its header is read and the
// tensor's key classified.
struct TensorOfFile {
  const std::string& path;
  int fd;
  const SafetensorsHeader& header;
  size_t tensor;  // in header.tensors
  const KeyClass& key;
};
using TensorRowsOf = std::function<Result<TensorRows>(const TensorOfFile& tensor)>;

struct FileExportSettings {
  std::string staging_dir;             // where the exported file is created
  bool dry_run = false;                // read and plan only, write nothing
  WritebackQueue* writeback = nullptr; // takes each written file for a later fsync; nullptr: close without fsync
  const PartSelections* selections = nullptr;  // with --evict-*: the parts whose rows are selected
  // --resume: called with each written file's result and the seconds its writing took, once the file is durable
  // (fsynced, or closed without fsync), on the writeback queue's thread (publish/resume_journal.h journals it);
  // its failure is the file's.
  std::function<Status(const FileResult&, double)> once_durable = nullptr;
  // The same for each written piece of a split file (export_data_file_piece).
  std::function<Status(const struct PieceOutcome&, double)> piece_durable = nullptr;
  TensorRowsOf tensor_rows = nullptr;  // a source whose rows are not the files' own (merge); null: they are
};

// A data file's checked header and the decision of the row transforms for each of its tensors (both export
// formats start here).
struct FileDecision {
  SafetensorsHeader header;
  std::vector<KeyClass> keys;  // per header tensor
  std::vector<bool> keep;      // per header tensor
  std::vector<std::shared_ptr<const SlotRows>> rows;  // per header tensor: kept rows a transform rewrites, or null
  std::vector<std::shared_ptr<const PartSelection>> selections;  // per header tensor: its part's eviction, or null
  std::vector<std::optional<RowsFrom>> from;  // per header tensor: rows that stand in for its own (TensorRows)
};

// Reads the header of an open data file and decides each tensor. Every header key must be a block of this very
// file in the checkpoint's index, and must be classifiable (in tensorkey.json, or a dense "name^ " key); anything
// else means index, tensorkey.json and the data disagree, which is reported as bad input.
// With `selections`, a sparse tensor of a selected part keeps only the part's kept rows; its rows must be the part's
// (else bad input naming the tensor and the part). With `tensor_rows`, each tensor's rows and selection are the
// ones it gives.
Result<FileDecision> decide_data_file(int fd, const CheckpointListing& listing, const DataFile& file,
                                      const RowTransformChain& transforms,
                                      const PartSelections* selections = nullptr,
                                      const TensorRowsOf& tensor_rows = nullptr);

// Exports one data file whole (decided by decide_data_file).
Result<FileResult> export_data_file(const CheckpointListing& listing, const DataFile& file,
                                    const RowTransformChain& transforms, CopyEngine& engine,
                                    const FileExportSettings& settings);

// Piece `piece` of the `pieces` a large file is split into (piece_plan.h): decides the file as export_data_file
// does, then writes the piece's window of the output (piece_window) into the output file, which every piece's
// writer opens (creating it if first) and writes at its own offsets. The writer of piece 0 also gives the file's
// FileResult, its checksum left for rank 0 to join from every PieceResult.
struct PieceOutcome {
  std::optional<FileResult> file;  // piece 0 only
  PieceResult piece;
};
Result<PieceOutcome> export_data_file_piece(const CheckpointListing& listing, const DataFile& file, uint32_t piece,
                                            uint32_t pieces, const RowTransformChain& transforms, CopyEngine& engine,
                                            const FileExportSettings& settings);

}  // namespace recis_convert
