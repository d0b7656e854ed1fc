// Row tables' output files in RecIS's layout (one per table, sources/row_tables.h, or the M part files of --reshard):
// created by rank 0 at their final size with their headers once every rank's range is counted and placed
// (pipeline/row_table_stage.h), every rank's kept rows written where they were placed through the row loop
// (pipeline/row_loop.h), and described after the barrier from their checksums.
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
#include "recis_convert/publish/resume_journal.h"
#include "recis_convert/sources/row_tables.h"

namespace recis_convert {

// Rank 0, before the others start: every output file with its header, at its final size (`keep`: --resume,
// file_io.h's create_sized_file).
Status create_row_table_files(const RowTables& model, const std::string& staging_dir, bool keep);

// Rank 0, after every rank finished: the files as FileResults, with their checksums.
Result<std::vector<FileResult>> row_table_file_results(const RowTables& model, const std::string& staging_dir,
                                                     const std::map<std::string, FileDigest>& digests);

// Every rank: the kept rows of its ranges into the files, where `plan` placed them, in pieces of about the
// --buffer-mib. A range that does not fill its place exactly (its file changed since it was counted) is kBadInput.
// With --resume (`resumed` not null): a range an interrupted run journaled is adopted if its bytes check out
// (publish/resume_journal.h: adopt_journaled_rows) and counted in `resumed`, its conversion error (serving dtypes)
// added to `transforms`' ledger; every range written is journaled with its own. `progress` gets the source bytes of
// each piece.
Status write_row_table_ranges(const JobOptions& options, const RowTables& model, const RowTablePlan& plan,
                              const RowTransformChain& transforms, const std::string& staging_dir, int rank,
                              int world_size, ResumeSavings* resumed, const Log& log,
                              const std::function<void(uint64_t)>& progress);

}  // namespace recis_convert
