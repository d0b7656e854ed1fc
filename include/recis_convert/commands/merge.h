// `recis-convert merge BASE DELTA [DELTA ...] --export-dir OUT`: the full export a serving system holds after
// applying the deltas to the base in order, as an ordinary "kind": "full" export at the last delta's step.
// A job of the orchestrator (job.h), as the export is; its stages:
//   1. rank 0 reads the manifests and checks the chain (plan/merge_chain.h), reads the exports' indexes and
//      creates the staging directory; every rank learns them;
//   2. the base's data files are planned as an export's (whole files, and pieces of large ones); every input is
//      checked against its manifest, the deltas and the base's small and split files now (commands/verify.h), the
//      base's whole files from the reads of the stream that merges them (sources/input_verifier.h); every rank
//      reads the deltas' headers (sources/delta_rows.h); with --reshard, the export's count pass over the merged
//      rows (pipeline/reshard_stage.h);
//   3. each rank writes its files and pieces as an export writes a checkpoint's (the stream stage, sinks/sink.h,
//      into safetensors files or model.h5), with the merged rows (sources/merged_export.h: each base part joined
//      with the deltas' ids of its slice) and the row transforms asked for; then every rank learns whether a file
//      its stream read differs from its manifest;
//   4. barrier; the files every rank wrote into are checksummed together; rank 0 writes the metadata, carries the
//      newest dense export, fg, mc and assets over, the manifest, and publishes.
// The files are the base's (or the --reshard M ones, or model.h5), whatever the number of ranks.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/error.h"
#include "recis_convert/mpi/comm.h"
#include "recis_convert/sinks/file_export.h"
#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/pipeline/rank_reports.h"

namespace recis_convert {

// What rank 0 tells every rank after reading the exports.
struct MergeInputs {
  CheckpointListing base;
  std::vector<CheckpointListing> deltas;
  std::string staging_dir;
  int64_t step = 0;  // the merged step: the last delta's
};

ExitCode run_merge(const MergeOptions& options, Comm& comm);

}  // namespace recis_convert
