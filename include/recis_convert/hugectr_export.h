// --source hugectr: HugeCTR sparse tables exported in the layout of a RecIS checkpoint, so that one serving path
// reads both: one safetensors file per table holding <table>.id/part_0_1 (I64 [N]), <table>.embedding/part_0_1
// (F32 [N, vec]) and, for localized tables, <table>.slot_id/part_0_1 (U64 [N]), each a single part with RecIS
// slice 00000@65536@65536; index, tensorkey.json and the torch_rank json follow from them as for RecIS.
//
// Large tables are few, so a table's rows (not its files) are split over the ranks, in contiguous ranges: rank 0
// writes each file's header and sizes it, then every rank streams its rows and pwrites them at offsets the header
// fixes. Rank 0 checksums the finished files for the manifest.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "recis_convert/checkpoint.h"
#include "recis_convert/cli.h"
#include "recis_convert/error.h"
#include "recis_convert/file_export.h"
#include "recis_convert/hugectr_sparse.h"
#include "recis_convert/safetensors.h"

namespace recis_convert {

inline constexpr const char* kHugectrSlice = "00000@65536@65536";

struct HugectrTableExport {
  std::string name;                 // the table: the embedding layer's top, or --table-names
  HugectrSparseTable source;
  std::string file;                 // output data file name
  std::vector<TensorInfo> tensors;  // id, embedding[, slot_id]; offsets in the data area
  std::string preamble;             // length prefix + header
  uint64_t file_bytes() const;
  uint64_t source_bytes() const;
};

struct HugectrExportPlan {
  std::string graph_path;
  std::vector<HugectrTableExport> tables;
};

// Rank 0: reads the graph, matches each --sparse path to its embedding (in graph order), describes and checks
// every table, checks the --dense file's size against the graph, and lays out the output files. kBadInput/kUsage.
Result<HugectrExportPlan> plan_hugectr_export(const JobOptions& options);

// The plan as the checkpoint listing the metadata stage expects (data files, tensorkey, index blocks).
CheckpointListing hugectr_listing(const HugectrExportPlan& plan);

std::string hugectr_plan_to_json(const HugectrExportPlan& plan);
Result<HugectrExportPlan> hugectr_plan_from_json(const std::string& text);

// Rank 0, before the others start: every output file with its header, at its final size.
Status create_hugectr_files(const HugectrExportPlan& plan, const std::string& staging_dir);

// Every rank: its contiguous range of every table's rows, in pieces of about `buffer_bytes`. `progress` gets the
// source bytes of each piece.
Status write_hugectr_rows(const HugectrExportPlan& plan, const std::string& staging_dir, int rank, int world_size,
                          size_t buffer_bytes, bool fsync, const std::function<void(uint64_t)>& progress);

// --format hdf5 reads tables as plain arrays: a legacy single-file table (interleaved records) is first unpacked
// into key / emb_vector / slot_id files in `dir` (streamed, bounded memory). The caller removes `dir` before
// publishing.
Status unpack_legacy_table(const HugectrSparseTable& table, const std::string& dir, size_t buffer_bytes);

// Rank 0, after every rank finished: the files as FileResults, with their checksums.
Result<std::vector<FileResult>> hugectr_file_results(const HugectrExportPlan& plan, const std::string& staging_dir);

}  // namespace recis_convert
