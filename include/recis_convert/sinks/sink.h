// The stream stage's destinations. Every rank writes its share of the source, through the row transforms, into
// the staging directory, in the export format the user chose:
//   safetensors_sink.cpp  one file per data file: a RecIS checkpoint's files as they are dealt to the ranks, or
//                         one file per HugeCTR table, every rank writing its range of the rows
//   hdf5_sink.cpp         one model.h5, planned from every rank's summaries and written collectively
// A rank that fails announces it at once (Comm::announce_failure), so the others stop early; its error travels
// to rank 0 in its StreamOutcome.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
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
#include "recis_convert/plan/hdf5_layout.h"
#include "recis_convert/sinks/packed_file_results.h"
#include "recis_convert/pipeline/hugectr_row_stage.h"
#include "recis_convert/pipeline/reshard_stage.h"
#include "recis_convert/sources/source.h"
#include "recis_convert/sources/source_tensor.h"
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
  const HugectrRowPlan* hugectr_rows = nullptr;  // HugeCTR with --evict-l2-below or --reshard: where rows go
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
  // Rank 0, HugeCTR tables into model.h5 with --evict-l2-below: each table's rows and evicted rows, counted in the
  // stream (a safetensors export counts them before it: hugectr_row_stage.h).
  std::map<std::string, TableEviction> evictions;
  // RecIS files: the copy engine's path at the end of the stream (copy_choice.h) and why: the choice, and the
  // fallback if the kernel refused copy_file_range. Empty where no file was copied.
  std::string copy_path, copy_why;
};

// Rank 0, before any rank streams: what all ranks then write into together (a HugeCTR table's file, created at its
// final size with its header).
Status prepare_export_on_root(const JobOptions& options, const SourceDescription& source,
                              const std::string& staging_dir);

// model.h5: what each rank tells every other before the layout: the tensors it will read, or that it cannot go on.
struct RankTensors {
  bool ok = true;
  std::vector<SourceTensor> tensors;
  std::vector<HugectrRangeCount> hugectr_counts;  // HugeCTR with --evict-l2-below or --reshard: its tables, whole
};

// Every rank: its share of the source into the staging directory.
StreamOutcome stream_into_safetensors(const StreamRequest& request, Comm& comm, const Log& log);
StreamOutcome stream_into_hdf5(const StreamRequest& request, Comm& comm, const Log& log);

inline StreamOutcome stream_into_export(const StreamRequest& request, Comm& comm, const Log& log) {
  return request.options.format == ExportFormat::kHdf5 ? stream_into_hdf5(request, comm, log)
                                                       : stream_into_safetensors(request, comm, log);
}

// Rank 0, after the barrier: removes what only the stream needed (unpacked legacy HugeCTR tables) and, when every
// rank succeeded, replaces `files` by the files all ranks wrote together (HugeCTR tables, resharded files),
// described by rank 0 (and `owner`, file -> rank, says rank 0), and for resharded files `listing`, the files and
// blocks the metadata describes, by theirs (model.h5 describes the source's tensors: its listing stays).
// `shared`: those files' sizes and checksums (shared_file_checksums.h).
Status finish_stream_on_root(const StreamRequest& request, bool succeeded, std::vector<FileResult>& files,
                             std::map<std::string, int>& owner, const std::map<std::string, FileDigest>& shared,
                             CheckpointListing& listing);

}  // namespace recis_convert
