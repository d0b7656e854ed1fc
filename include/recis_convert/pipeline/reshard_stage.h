// With --reshard M, between the plan (and the eviction counts) and the stream: where every kept row goes.
//   1. every rank decides its own files' tensors (as any export does) and counts, per source part whose id tensor
//      it holds, the kept rows bound for each target part, reading only the ids (and the eviction columns);
//   2. rank 0 plans the M output files from every rank's counts (plan/reshard_plan.h), creates them in the staging
//      directory with their headers at their final size, and sends each rank the placements of its tensors;
//   3. the stream writes the rows there (sinks/reshard_writer.h), and rank 0 describes the finished files.
// Every rank learns whether it all succeeded, so none waits on a failed one.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/checksum.h"
#include "recis_convert/common/error.h"
#include "recis_convert/mpi/comm.h"
#include "recis_convert/plan/reshard_plan.h"
#include "recis_convert/pipeline/eviction_stage.h"
#include "recis_convert/sinks/file_export.h"
#include "recis_convert/sinks/reshard_writer.h"
#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

// What one rank found in its files, or why it could not.
struct RankReshardCounts {
  std::optional<Error> error;
  ReshardInput found;  // its count is unused: rank 0 knows M
  std::vector<PartCount> kept;  // the kept rows of its parts that have a selection, as their selection says
};

struct ReshardStage {
  ReshardShare share;                   // every rank: the placements of its files' tensors
  std::optional<ReshardLayout> layout;  // rank 0: the whole plan
};

// Every rank, collectively. `mine`: this rank's data files; `owners`: each file's rank; `selections`: this rank's
// parts' selections with --evict-* or --delta-since (eviction_stage.h), else null. The output files are created
// when `staging_dir` is not empty (not in a dry run) and the format is safetensors (into model.h5 rows are only
// placed). `tensor_rows`: a source whose rows are not the files' own (a merge's, with its selections:
// file_export.h).
Result<ReshardStage> plan_resharding(const JobOptions& options, const CheckpointListing& listing,
                                     const std::vector<size_t>& mine, const std::vector<int>& owners,
                                     const RowTransformChain& transforms, const PartSelections* selections,
                                     const std::string& staging_dir, Comm& comm,
                                     const TensorRowsOf& tensor_rows = nullptr);

// Rank 0, after every rank wrote its rows: the M files as FileResults with their checksums (each fsynced first
// with `fsync`). `sources`: every rank's results for the source files (their bytes and dropped tensors); the output
// files have no source of their own, so file 0's result carries the source totals.
Result<std::vector<FileResult>> describe_resharded_files(const ReshardLayout& layout, const std::string& staging_dir,
                                                         const std::map<std::string, FileDigest>& digests,
                                                         bool fsync, bool dry_run, std::vector<FileResult> sources);

// The export's files and blocks after the stream, as the metadata stage describes them: the M output files
// (`files`: describe_resharded_files's results) in place of the source's.
void describe_resharded_listing(const ReshardLayout& layout, const std::vector<FileResult>& files,
                                CheckpointListing& listing);

}  // namespace recis_convert
