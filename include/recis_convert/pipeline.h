// The sparse export job, stage by stage (the user's fixed shape):
//   1. discover   rank 0 resolves and checks the checkpoint, creates the staging directory, broadcasts both
//   2. plan       every rank computes the same file -> rank assignment (plan.h)
//   3. stream     each rank exports its files through the slot filter (file_export.h)
//   4. agree      all ranks agree on success; rank 0 gathers every file result and error
//   5. metadata   rank 0 writes index, tensorkey.json, torch_rank json, fg.json, input_columns.json, manifest
//   6. publish    rank 0 renames the staging directory to the export directory (or removes it on failure)
// Every rank returns the same exit code.
#pragma once

#include "recis_convert/cli.h"
#include "recis_convert/error.h"
#include "recis_convert/mpi_world.h"

namespace recis_convert {

ExitCode run_export(const JobOptions& options, MpiWorld& world);

}  // namespace recis_convert
