// The export job in the user's fixed shape; src/export_job.cpp reads as this list, each stage lives in its folder:
//   1. discover   rank 0 resolves and checks the source (sources/), creates the staging directory (publish/);
//                 every rank learns both
//   2. plan       every rank computes the same file -> rank assignment (plan/)
//   3. stream     each rank's share through the row transforms (transforms/) into the export format (sinks/)
//   4. barrier    all ranks agree on success; rank 0 gathers every result and error (mpi/)
//   5. metadata   rank 0 writes index, tensorkey.json, torch_rank json, configs, assets (metadata/), the dense
//                 network (dense/), the manifest and the run record
//   6. publish    rank 0 renames the staging directory to the export directory (or removes it on failure)
// Every rank returns the same exit code.
#pragma once

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/error.h"
#include "recis_convert/mpi/comm.h"

namespace recis_convert {

ExitCode run_export(const JobOptions& options, Comm& comm);

}  // namespace recis_convert
