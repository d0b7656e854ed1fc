// `recis-convert merge BASE DELTA [DELTA ...] --export-dir OUT`: the full export a serving system holds after
// applying the deltas to the base in order, as an ordinary "kind": "full" export at the last delta's step.
// The stages, in order:
//   1. rank 0 reads the manifests and checks the chain (plan/merge_chain.h), reads the exports' indexes and
//      creates the staging directory; every rank learns them;
//   2. every rank indexes the deltas' rows by id (sources/delta_rows.h);
//   3. the base's data files are dealt round-robin; each rank writes its files merged (sinks/merge_writer.h);
//   4. barrier; rank 0 writes the metadata, carries the newest dense export, fg, mc and assets over, the manifest,
//      and publishes.
// The files are the base's, whatever the number of ranks.
#pragma once

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/error.h"
#include "recis_convert/mpi/comm.h"

namespace recis_convert {

ExitCode run_merge(const MergeOptions& options, Comm& comm);

}  // namespace recis_convert
