// The stream stage's destinations: one interface (Sink), one class per kind of output, chosen once per job by
// make_sink (ADIOS2's engine/ folder is the model). Every rank writes its share of the source, through the row
// transforms, into the staging directory:
//   checkpoint_files_sink.h  a RecIS checkpoint's (or an export's) data files, one output file per data file,
//                            whole or in pieces, as they are dealt to the ranks
//   resharded_files_sink.h   --reshard: M part files every rank routes its rows into
//   row_tables_sink.h    a HugeCTR model: one file per table (or M part files), every rank writing its rows
//   hdf5_sink.h              --format hdf5: one model.h5, planned from every rank's summaries, written collectively
// Every output file is then described the same way: a file one rank wrote by that rank's FileResult (its checksum
// made as it was written, or joined from its pieces' on rank 0: rank_reports.h), a file all ranks wrote into by
// its size and checksum, which every rank reads a share of after the barrier (shared_file_checksums.h); rank 0's
// Sink::describe_on_root turns the latter into FileResults.
// A rank that fails announces it at once (Comm::announce_failure), so the others stop early; its error travels
// to rank 0 in its StreamOutcome.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/checksum.h"
#include "recis_convert/common/error.h"
#include "recis_convert/common/log.h"
#include "recis_convert/mpi/comm.h"
#include "recis_convert/plan/piece_plan.h"
#include "recis_convert/publish/resume_journal.h"
#include "recis_convert/sinks/file_export.h"
#include "recis_convert/sinks/packed_file_results.h"
#include "recis_convert/sinks/shared_file_checksums.h"
#include "recis_convert/pipeline/row_table_stage.h"
#include "recis_convert/plan/hdf5_layout.h"  // PieceBytes
#include "recis_convert/pipeline/reshard_stage.h"
#include "recis_convert/sources/source.h"
#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

struct StreamRequest {
  const JobOptions& options;
  const SourceDescription& source;
  const RowTransformChain& transforms;
  const std::vector<size_t>& mine;  // this rank's whole data files, indices into source.listing.files
  const std::vector<WorkItem>& pieces;  // this rank's pieces of the files split among ranks (piece_plan.h)
  uint64_t work_items;                  // whole files and pieces over every rank (for progress lines)
  std::string staging_dir;          // empty in a dry run
  const PartSelections* selections = nullptr;  // with --evict-*: this rank's parts whose rows are selected
  const ReshardStage* reshard = nullptr;       // with --reshard: this rank's placements (and rank 0's plan)
  const RowTablePlan* row_table_plan = nullptr;  // HugeCTR with --evict-l2-below or --reshard: where rows go
  TensorRowsOf tensor_rows = nullptr;  // a source whose rows are not the files' own (merge: FileExportSettings)
};

struct StreamOutcome {
  // The files this rank exported (or would have). Rank 0 keeps its own as they are; every other rank packs each
  // as it is done, for the trip to rank 0 (a million tensors would not fit a small rank as TensorInfos).
  std::vector<FileResult> results;
  PackedFileResults packed;
  void add_result(FileResult result, const BlockCatalog& blocks, bool root) {
    if (root) results.push_back(std::move(result)); else packed.add(result, blocks);
  }
  std::optional<Error> failure;
  uint64_t shared_bytes = 0;  // bytes written into files shared by all ranks (HugeCTR tables), not in `results`
  ResumeSavings resumed;      // --resume: the files adopted from the journal instead of exported
  std::vector<PieceResult> pieces;  // the pieces of split files this rank wrote (their files' results: piece 0's)
  // model.h5: the bytes this rank read and wrote, by its pieces (which need not be its files': spread_large_files)
  std::optional<PieceBytes> piece_bytes;
  // RecIS files: the copy engine's path at the end of the stream (copy_choice.h) and why: the choice, and the
  // fallback if the kernel refused copy_file_range. Empty where no file was copied.
  std::string copy_path, copy_why;
  // Rows the source left out as the stream read them, per table (a merge judges --evict-* on the merged rows:
  // sources/merged_export.h), and the tables judged by their global step. An export counts them before the stream.
  std::map<std::string, uint64_t> evicted;
  std::set<std::string> judged_by_step;
};

// A kind of output. Its methods are called in the stage order of every job (job.h).
class Sink {
 public:
  virtual ~Sink() = default;

  // Rank 0, before any rank streams (discovery): what all ranks then write into together, if it can be made
  // before the count pass.
  virtual Status prepare_on_root(const JobOptions& options, const SourceDescription& source,
                                 const std::string& staging_dir) const;

  // Every rank: its share of the source into the staging directory.
  virtual StreamOutcome stream(const StreamRequest& request, Comm& comm, const Log& log) const = 0;

  // Rank 0, once every rank streamed: the files all ranks wrote into together (none in a dry run), which every
  // rank then checksums a share of (checksum_shared_files).
  virtual std::vector<std::string> shared_files(const StreamRequest& request) const;

  // Rank 0, after the barrier: every output file as a FileResult. `files` holds the ranks' own (`owner`: file ->
  // rank); a sink whose ranks wrote files together replaces them, when every rank `succeeded`, by those files,
  // described from `shared` (their sizes and checksums), and then `listing`, the files and blocks the metadata
  // describes, by theirs when they hold other tensors than the source's. It also removes what only the stream
  // needed.
  virtual Status describe_on_root(const StreamRequest& request, bool succeeded, std::vector<FileResult>& files,
                                  std::map<std::string, int>& owner, const SharedFileDigests& shared,
                                  CheckpointListing& listing) const;
};

// The one place a job's options and source choose its sink.
std::unique_ptr<Sink> make_sink(const JobOptions& options, const SourceDescription& source);

}  // namespace recis_convert
