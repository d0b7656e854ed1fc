// The HugeCTR tables' output files in RecIS's layout (one per table; sources/hugectr_export.h describes them):
// created by rank 0 at their final size with their headers, every rank's contiguous range of rows written into
// them through the row loop (pipeline/row_loop.h), and described after the barrier from their checksums.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "recis_convert/common/checksum.h"
#include "recis_convert/common/error.h"
#include "recis_convert/sinks/file_export.h"
#include "recis_convert/cli/cli.h"
#include "recis_convert/pipeline/row_table_stage.h"
#include "recis_convert/pipeline/row_loop.h"
#include "recis_convert/sources/row_tables.h"

namespace recis_convert {

// Rank 0, before the others start: every output file with its header, at its final size.
Status create_row_table_files(const RowTables& model, const std::string& staging_dir);

// Every rank: its contiguous range of every table's rows, in pieces of about `buffer_bytes`. `progress` gets the
// source bytes of each piece.
Status write_row_table_rows(const RowTables& model, const std::string& staging_dir, int rank, int world_size,
                          size_t buffer_bytes, bool fsync, const std::function<void(uint64_t)>& progress);

// Rank 0, after every rank finished: the files as FileResults, with their checksums.
Result<std::vector<FileResult>> row_table_file_results(const RowTables& model, const std::string& staging_dir,
                                                     const std::map<std::string, FileDigest>& digests);

// --evict-l2-below on a row table's rows read (its embeddings are read anyway, so the decision is made on them, in
// the count pass and the write alike): a row stays when the L2 norm of its `dim` values of `dtype` (F32, F16,
// BF16: taken as float32 exactly) is at least `below`.
RowFilter embedding_norm_filter(DType dtype, uint64_t dim, float below);

// With --evict-l2-below or --reshard (pipeline/row_table_stage.h planned where the kept rows go):
// Every rank: the kept rows of its ranges into the files. `progress` gets the source bytes of each piece.
Status write_row_table_kept_rows(const JobOptions& options, const RowTables& model, const RowTablePlan& plan,
                               const std::string& staging_dir, int rank, int world_size,
                               const std::function<void(uint64_t)>& progress);

}  // namespace recis_convert
