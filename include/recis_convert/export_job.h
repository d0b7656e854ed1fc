// The export of a RecIS checkpoint or a HugeCTR model: a job of the orchestrator (job.h, which lists its stages).
// src/export_job.cpp holds each stage's entry; their work is in pipeline/, on the state an export carries from stage
// to stage (pipeline/export_run.h).
#pragma once

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/error.h"
#include "recis_convert/mpi/comm.h"

namespace recis_convert {

ExitCode run_export(const JobOptions& options, Comm& comm);

}  // namespace recis_convert
