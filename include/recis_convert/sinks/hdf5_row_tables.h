// Row tables (sources/row_tables.h) into model.h5: the tables a rank reads as the source tensors the HDF5 layout
// takes, one per exported slot with the rows as read (the layout applies the row transforms), and the files they
// stand for in the manifest. A HugeCTR table's key / emb_vector / slot_id arrays are read where they lie (a legacy
// table's unpacked copy: hugectr_export.h). A DCP table's rows are stitched from its chunks, so no file holds them
// as an array: they come from its reader (PieceSources::rows), its ids are its row indices, and its .metadata stands
// for it as the tensors' file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/error.h"
#include "recis_convert/pipeline/row_table_stage.h"
#include "recis_convert/sinks/file_export.h"
#include "recis_convert/sinks/hdf5_export.h"
#include "recis_convert/sources/row_tables.h"
#include "recis_convert/sources/source_tensor.h"

namespace recis_convert {

struct RowTablesShare {
  std::vector<SourceTensor> tensors;
  std::vector<FileResult> results;
  PieceSources sources;  // a DCP table's rows, and with --evict-l2-below every selected tensor's decisions
};

// The file a slot's tensor names (SourceTensor::file, DecisionColumn::path): a HugeCTR table's array, or a DCP
// table's .metadata.
std::string row_table_slot_file(const RowTable& table, const RowTableSlot& slot, const std::string& staging_dir);

// The tables at `mine` (indices into model.tables), read by `rank`. A legacy HugeCTR table is unpacked first
// (unless `dry_run`) under `staging_dir`. With `counts` (--evict-l2-below, counted whole by the rank that reads each
// table before the stream: pipeline/row_table_stage.h), the tensors get their kept rows, the files their kept
// tensors, and the sources each tensor's eviction decision (the L2 norm of its table's embeddings).
Result<RowTablesShare> row_tables_share(const JobOptions& options, const RowTables& model,
                                        const std::vector<size_t>& mine, int rank, const std::string& staging_dir,
                                        const RowTablePlan* counts);

}  // namespace recis_convert
