// --source hugectr: a HugeCTR model's sparse tables as row tables (row_tables.h), exported in the layout of a
// RecIS checkpoint with F32 embeddings; and what model.h5 needs of them (the tables' arrays as source tensors).
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
#include "recis_convert/sources/row_tables.h"
#include "recis_convert/sources/source_tensor.h"
#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

// Rank 0: reads the graph, matches each --sparse path to its embedding (in graph order), describes and checks
// every table, checks the --dense file's size against the graph, and lays out the output files. kBadInput/kUsage.
// The tables' slots go through `transforms` (the same chain on every rank).
Result<RowTables> describe_hugectr_model(const JobOptions& options, const RowTransformChain& transforms);

// --format hdf5 reads tables as plain arrays: a legacy single-file table (interleaved records) is first unpacked
// into key / emb_vector / slot_id files in `dir` (streamed, bounded memory). The caller removes `dir` before
// publishing.
Status unpack_legacy_table(const HugectrSparseTable& table, const std::string& dir, size_t buffer_bytes);

// --format hdf5 (sinks/hdf5_row_tables.h): where a slot's rows lie as model.h5 reads them, the table's directory
// or a legacy table's unpacked copy in the staging directory, which unpack_if_legacy() makes (a no-op for other
// tables) and remove_unpacked_tables() removes.
std::string hugectr_slot_path(const RowTable& table, const RowTableSlot& slot, const std::string& staging_dir);
Status unpack_if_legacy(const RowTable& table, const std::string& staging_dir, size_t buffer_bytes);
void remove_unpacked_tables(const RowTables& model, const std::string& staging_dir);

}  // namespace recis_convert
