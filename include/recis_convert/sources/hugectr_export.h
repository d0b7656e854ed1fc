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
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/cli/cli.h"
#include "recis_convert/common/checksum.h"
#include "recis_convert/common/error.h"
#include "recis_convert/sinks/file_export.h"
#include "recis_convert/formats/hugectr_sparse.h"
#include "recis_convert/formats/safetensors.h"
#include "recis_convert/sources/source_tensor.h"
#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

inline constexpr const char* kHugectrSlice = "00000@65536@65536";

// One slot of a table: the rows as the source holds them, and as the row transforms export them.
struct HugectrSlotExport {
  std::string slot;         // id, embedding or slot_id
  std::string source_file;  // key, emb_vector or slot_id: this slot's array in the directory format
  RowLayout source;         // as read: I64 keys (widened), F32 [vec] vectors, U64 slot ids
  std::shared_ptr<const SlotRows> rows;  // through the row transforms (a slot they drop is not listed)
};

struct HugectrTableExport {
  std::string name;                 // the table: the embedding layer's top, or --table-names
  HugectrSparseTable source;
  std::string file;                 // output data file name
  std::vector<HugectrSlotExport> slots;  // the exported slots: id, embedding[, slot_id] unless dropped
  std::vector<TensorInfo> tensors;  // one per slot, after the row transforms; offsets in the data area
  std::string preamble;             // length prefix + header
  uint64_t file_bytes() const;
  uint64_t source_bytes() const;
};

struct HugectrModel {
  std::string graph_path;
  std::vector<HugectrTableExport> tables;
};

// Rank 0: reads the graph, matches each --sparse path to its embedding (in graph order), describes and checks
// every table, checks the --dense file's size against the graph, and lays out the output files. kBadInput/kUsage.
// The tables' slots go through `transforms` (the same chain on every rank).
Result<HugectrModel> describe_hugectr_model(const JobOptions& options, const RowTransformChain& transforms);

// The model as the checkpoint listing the metadata stage expects (data files, tensorkey, index blocks).
CheckpointListing hugectr_listing(const HugectrModel& model);

// Lays out every table's slots, tensors and file header from its source (after the model crossed ranks, where only
// the sources travel: mpi/job_messages.h).
Status lay_out_hugectr_tables(HugectrModel& model, const RowTransformChain& transforms);

// Rank 0 after eviction: the table's tensors and header for `rows` rows (its slots stay as laid out).
void resize_hugectr_table(HugectrTableExport& table, uint64_t rows);

// --format hdf5 reads tables as plain arrays: a legacy single-file table (interleaved records) is first unpacked
// into key / emb_vector / slot_id files in `dir` (streamed, bounded memory). The caller removes `dir` before
// publishing.
Status unpack_legacy_table(const HugectrSparseTable& table, const std::string& dir, size_t buffer_bytes);

// --format hdf5: the tables at `mine` (indices into model.tables), as the source tensors the HDF5 layout takes (one per
// exported slot, rows as read) and as the files they stand for in the manifest (after the row transforms). A
// legacy table is first unpacked (unless `dry_run`) under `staging_dir`; remove_unpacked_tables() removes them.
struct HugectrShare {
  std::vector<SourceTensor> tensors;
  std::vector<FileResult> results;
};
// Where a slot's rows lie as model.h5 reads them: the table's directory, or a legacy table's unpacked copy in the
// staging directory.
std::string hugectr_slot_path(const HugectrTableExport& table, const HugectrSlotExport& slot,
                              const std::string& staging_dir);
Result<HugectrShare> hugectr_share(const HugectrModel& model, const std::vector<size_t>& mine, int rank,
                                   const std::string& staging_dir, bool dry_run, size_t buffer_bytes);
void remove_unpacked_tables(const HugectrModel& model, const std::string& staging_dir);

}  // namespace recis_convert
