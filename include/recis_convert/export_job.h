// The export job in the user's fixed shape; src/export_job.cpp reads as this list, each stage's work in pipeline/
// (the state it carries from stage to stage: pipeline/export_run.h):
//   1. discover   rank 0 resolves and checks the source (sources/), creates the staging directory (publish/);
//                 every rank learns both (pipeline/discovery.h)
//   2. plan       every rank computes the same file -> rank assignment (plan/); rank 0 says what it will do
//                 (pipeline/job_log.h); 2b. the count passes of row selection and routing (pipeline/count_pass.h)
//   3. stream     each rank's share through the row loop (pipeline/row_loop.h) into the export format (sinks/)
//   4. barrier    all ranks agree on success; rank 0 gathers every result and error (pipeline/rank_reports.h)
//   5. metadata   rank 0 writes index, tensorkey.json, torch_rank json, configs, assets (metadata/), the dense
//                 network (dense/), the manifest and the run record (pipeline/finish_export.h)
//   6. publish    rank 0 renames the staging directory to the export directory (or removes it on failure)
// Every rank returns the same exit code.
#pragma once

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/error.h"
#include "recis_convert/mpi/comm.h"

namespace recis_convert {

ExitCode run_export(const JobOptions& options, Comm& comm);

}  // namespace recis_convert
