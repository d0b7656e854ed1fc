// --resume: a run that is interrupted (a Slurm time limit, a preemption, a failing rank, SIGKILL) keeps its staging
// directory, and the next --resume run with the same options and the same source does only what is left.
//
// The staging directory of a --resume run has a fixed name, ".<export-name>.recis-staging.resume", so the next run
// finds it on any node; a lock on its journal's `lock` file (fcntl: across the nodes of a shared file system) keeps
// two live runs out of it. Its journal, ".recis-journal/", holds
//   run.json       what the run is: the options that shape the export and the source (every data file's size and
//                  modification time, and the checksums of `index` and `tensorkey.json`);
//   files/<name>   one entry per finished output file: its result (as the manifest needs it), its size and
//                  checksum, its source file's size, modification time and header checksum, and the seconds it took;
//   files/<name>.piece-<k>-of-<n>   one per finished piece of a file split among ranks (piece_plan.h): the same,
//                  with the piece's result (the checksums of its share of the output) instead of the file's size
//                  and checksum (and, for piece 0, the file's result);
//   files/row-table-<t>.range-<r>-of-<n>   one per finished range of a row table's rows (sources/row_tables.h:
//                  HugeCTR's and a DCP's tables, whose rows, not files, are split over the ranks): the regions of the
//                  output files rank r of n wrote (a slot's rows, for each target file) and their checksums. The
//                  source is not stamped per entry: run.json holds every input file's size and time.
// An entry is written (to a temporary name, fsynced, renamed) only once its output file is fsynced: a journaled
// file is durable. The next run trusts nothing it has not checked: run.json must match (else a fresh start, with a
// line saying why); each entry's output must have its size and checksum and its source the same header (else that
// file is redone). The journal is removed before the export is published.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "recis_convert/common/error.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/common/log.h"
#include "recis_convert/sinks/file_export.h"
#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/sources/source.h"
#include "recis_convert/transforms/quantization_error.h"

namespace recis_convert {

inline constexpr const char* kJournalDir = ".recis-journal";

// What run.json records. Two runs may share a staging directory when their fingerprints are equal.
struct RunFingerprint {
  nlohmann::json options;  // the job config without the options that do not change the export's bytes
  // A checkpoint's directory, data files (name, size, mtime), index and tensorkey.json checksums; row tables' source
  // path, every file they are read from (path, size, mtime) and the checksum of what describes them (a DCP's
  // .metadata, HugeCTR's graph).
  nlohmann::json source;
};

// From the job config (cli.h job_config_json) and the source: reads the data files' sizes and times and the
// checksums of `index` and `tensorkey.json`, or of the row tables' description (kBadInput naming a file that cannot be
// read).
Result<RunFingerprint> run_fingerprint(const nlohmann::json& job_config, const SourceDescription& source);

// Why `previous` cannot be resumed as `now` ("" when it can): the first option or source file that differs.
std::string why_not_resumable(const RunFingerprint& previous, const RunFingerprint& now);

// What one rank wrote of a row table's rows, its range (plan/slices.h rows_of_rank): a region of an output file for
// each exported slot and target file, with its checksum.
struct OutputRegion {
  std::string file;
  uint64_t offset = 0;
  uint64_t bytes = 0;
  uint64_t checksum = 0;  // XXH3-64 of the region's bytes
};
struct RowRangeResult {
  uint64_t table = 0;   // index into RowTables::tables
  uint32_t range = 0;   // the rank whose range it is
  uint32_t ranges = 0;  // of how many ranks
  std::vector<OutputRegion> regions;
  uint64_t bytes_in = 0;  // source bytes read
  std::optional<QuantizationError> error;  // with a serving dtype: its rows' conversion error (the manifest's sums)
};

// A journaled output file, piece of one, or range of a row table.
struct JournalEntry {
  FileResult result;  // a piece other than 0: its name only; a range: nothing
  std::optional<PieceResult> piece;
  std::optional<RowRangeResult> rows;
  uint64_t source_size = 0;
  int64_t source_mtime_ns = 0;
  uint64_t source_header = 0;  // XXH3-64 of the source file's length prefix and header
  double seconds = 0;          // how long its export took: what adopting it saves
};

// Rank 0, on a --resume staging directory (`existed`: found, not just made). Takes the lock (kOutput if another
// live run holds it), then either adopts what the journal lists (removing every other entry of the directory: a
// file cut off mid-write, metadata of the last run) or, when run.json is missing or differs, empties the directory
// and starts afresh (saying why). Returns the lock, held until the process exits, and the entries adopted so far
// (each rank still checks its own files' entries).
struct ResumeState {
  std::unique_ptr<FileDescriptor> lock;
  uint64_t journaled = 0;
};
Result<ResumeState> open_resume_journal(const std::string& staging_dir, const RunFingerprint& fingerprint, bool existed,
                                        const Log& log);

// What adopting journaled files saved a rank (summed on rank 0 for the run record).
struct ResumeSavings {
  uint64_t files = 0;
  uint64_t pieces = 0;  // of files split among ranks
  uint64_t ranges = 0;  // of row tables' rows
  uint64_t bytes = 0;   // output bytes adopted
  double seconds = 0;   // what exporting them took the interrupted run
};

// Every rank, for each of its files: the file's entry if the output and the source check out; none if there is no
// entry, or (after removing the entry and the output, and saying why) if something does not match. piece_bytes: the
// checksum's pieces (the run's --chunk-mib, which its fingerprint holds).
std::optional<JournalEntry> adopt_journaled_file(const std::string& staging_dir, const std::string& ckpt_dir,
                                                 const DataFile& file, uint64_t piece_bytes, const Log& log);

// Every rank, once a file's output is fsynced: its entry, durable. The source's size, time and header are read now.
Status journal_file(const std::string& staging_dir, const std::string& ckpt_dir, const FileResult& result,
                    double seconds);

// The same for piece `piece` of `pieces` of a split file: adopted if its entry is there, the source unchanged and
// the output's pieces in the piece's share have the journaled checksums (else its entry is removed, and the piece
// is written again over the same bytes: the output file is shared, so it stays).
std::optional<JournalEntry> adopt_journaled_piece(const std::string& staging_dir, const std::string& ckpt_dir,
                                                  const DataFile& file, uint32_t piece, uint32_t pieces,
                                                  uint64_t piece_bytes, const Log& log);
Status journal_piece(const std::string& staging_dir, const std::string& ckpt_dir, const PieceOutcome& done,
                     double seconds);

// The same for a rank's range of a row table: `planned` is the range with the regions it would write (checksums
// aside). Adopted if its entry lists the same regions and each holds the journaled checksum; else the entry is
// removed (saying why) and the range is written again over the same bytes.
std::optional<JournalEntry> adopt_journaled_rows(const std::string& staging_dir, const RowRangeResult& planned,
                                                 const Log& log);
// Every rank, once a range's rows are written: makes its regions durable (an fsync of each file; not with
// --no-fsync, whose entries are checked on adoption all the same) and writes its entry.
Status journal_rows(const std::string& staging_dir, const RowRangeResult& written, double seconds, bool fsync);

}  // namespace recis_convert
