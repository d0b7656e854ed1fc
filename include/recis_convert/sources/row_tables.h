// Tables whose rows, not files, are split over the ranks: a HugeCTR model's sparse tables (hugectr_export.h) and a
// Distributed Checkpoint's embedding tables (dcp_export.h). Large tables are few in both, so every rank reads a
// contiguous range of each table's rows (plan/slices.h: rows_of_rank), and the ranges in rank order are the table's
// row order, so the export does not depend on the number of ranks.
//
// Each table is exported in the layout of a RecIS checkpoint, so that one serving path reads every source: one
// safetensors file per table holding <table>.id/part_0_1 (I64 [N]), <table>.embedding/part_0_1 ([N, dim]) and,
// for HugeCTR's localized tables, <table>.slot_id/part_0_1 (U64 [N]), each a single part with RecIS slice
// 00000@65536@65536 (or, with --reshard M, the M part files of plan/reshard_plan.h); index, tensorkey.json and
// the torch_rank json follow from them as for RecIS.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/dcp_metadata.h"
#include "recis_convert/formats/hugectr_sparse.h"
#include "recis_convert/formats/safetensors.h"
#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/sources/row_reader.h"
#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

inline constexpr const char* kRowTableSlice = "00000@65536@65536";

// The columns of every row table's reader (HugectrColumns, DcpTableColumns): the int64 ids, the embeddings and,
// where the table has them, HugeCTR's uint64 slot ids.
inline constexpr size_t kRowTableIds = 0, kRowTableEmbeddings = 1, kRowTableSlotIds = 2;
// The column of an exported slot: id, embedding or slot_id.
size_t row_table_column(const std::string& slot);

// A Distributed Checkpoint's table as it is read: the directory of its .metadata and data files, and its 2-D weight
// with its chunks.
struct DcpTableSource {
  std::string dir;
  DcpTensor weight;
};

// Where a table's rows come from.
struct RowTableSource {
  std::variant<HugectrSparseTable, DcpTableSource> of;

  const HugectrSparseTable* hugectr() const { return std::get_if<HugectrSparseTable>(&of); }
  const std::string& path() const;  // HugeCTR: the table's directory or legacy file; DCP: the checkpoint directory
  uint64_t rows() const;
  uint64_t dim() const;
  DType embedding_dtype() const;    // F32, or a DCP table's F16 or BF16
  bool has_slot_id() const;
  uint64_t read_row_bytes() const;  // what one row costs to read (progress counts these)
  uint64_t bytes() const;           // the table's bytes in its files, as the manifest's source bytes count them
  std::vector<std::string> files() const;  // every file its rows are read from
  // The table's reader (columns kRowTableIds, kRowTableEmbeddings[, kRowTableSlotIds]).
  std::unique_ptr<RowReader> open_rows() const;
};

// One slot of a table: the rows as the source holds them, and as the row transforms export them.
struct RowTableSlot {
  std::string slot;         // id, embedding or slot_id
  std::string source_file;  // HugeCTR: key, emb_vector or slot_id, this slot's array in the directory format
  RowLayout source;         // as read: I64 ids, [dim] embeddings, U64 slot ids
  std::shared_ptr<const SlotRows> rows;  // through the row transforms (a slot they drop is not listed)
};

struct RowTable {
  std::string name;                 // HugeCTR: the embedding layer's top or --table-names; DCP: torchrec's name
  RowTableSource source;
  std::string file;                 // output data file name
  std::vector<RowTableSlot> slots;  // the exported slots: id, embedding[, slot_id] unless dropped
  std::vector<TensorInfo> tensors;  // one per slot, after the row transforms; offsets in the data area
  std::string preamble;             // length prefix + header
  uint64_t file_bytes() const;
  uint64_t source_bytes() const { return source.bytes(); }
};

struct RowTables {
  std::string source_path;  // what errors about the model as a whole name: the HugeCTR graph, the DCP directory
  std::string ckpt_id;      // the listing's checkpoint id: "hugectr", or the DCP checkpoint's directory name
  std::vector<RowTable> tables;
  // Every file the tables are read from, as discovery found it: rank 0 compares them again after every rank has
  // read them, so a file rewritten during the export (same size or not) fails the run instead of giving an export
  // that is neither version and verifies.
  std::map<std::string, FileStamp> inputs;
};

// Rank 0 at discovery: stamps every file of the tables (RowTables::inputs). kBadInput naming one that is gone.
Status stamp_row_table_inputs(RowTables& model);
// Rank 0 after the stream: kBadInput "file changed as we read it" naming the first input that is no longer as
// discovery found it.
Status check_row_table_inputs(const RowTables& model);

// The output data file of table i of n: model-<i>-of-<n>.safetensors.
std::string row_table_file_name(size_t i, size_t n);

// The model as the checkpoint listing the metadata stage expects (data files, tensorkey, index blocks).
CheckpointListing row_tables_listing(const RowTables& model);

// Lays out every table's slots, tensors and file header from its source, through `transforms` (the same chain on
// every rank: after the model crossed ranks, where only the sources travel, mpi/job_messages.h).
Status lay_out_row_tables(RowTables& model, const RowTransformChain& transforms);

// Rank 0 after eviction: the table's tensors and header for `rows` rows (its slots stay as laid out).
void resize_row_table(RowTable& table, uint64_t rows);

}  // namespace recis_convert
