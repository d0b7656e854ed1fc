// The orchestrator: every job of the pipeline in the user's fixed shape. src/job.cpp reads as this list; each stage's
// work is the job's (the export of a source: export_job.h; the merge of an export with its deltas: commands/merge.h):
//   1. discover   rank 0 resolves and checks the inputs (sources/), creates the staging directory (publish/);
//                 every rank learns both (pipeline/discovery.h)
//   2. plan       every rank computes the same file -> rank assignment (plan/); rank 0 says what it will do
//                 (pipeline/job_log.h); the count passes of row selection and routing (pipeline/count_pass.h)
//   3. stream     each rank's share through the row loop (pipeline/row_loop.h) into the export format (sinks/)
//   4. barrier    all ranks agree on success; rank 0 gathers every result and error (pipeline/rank_reports.h)
//   5. metadata   rank 0 writes index, tensorkey.json, torch_rank json, configs, assets (metadata/), the dense
//                 network (dense/), the manifest and the run record (pipeline/finish_export.h)
//   6. publish    rank 0 renames the staging directory to the export directory (or removes it on failure)
// Every rank returns the same exit code.
#pragma once

#include <chrono>

#include "recis_convert/common/error.h"
#include "recis_convert/metadata/run_report.h"
#include "recis_convert/mpi/comm.h"
#include "recis_convert/pipeline/rank_reports.h"
#include "recis_convert/sinks/sink.h"
#include "recis_convert/transforms/quantization_error.h"

namespace recis_convert {

// One job: what each stage does, on every rank unless it says otherwise.
class Job {
 public:
  virtual ~Job() = default;
  // 1. Collective; a failure is every rank's alike.
  virtual Status discover() = 0;
  // 2. Collective, with the count passes; a failure is every rank's alike.
  virtual Status plan() = 0;
  // 3. This rank's share, and the stream of it (a failure is said at the barrier).
  virtual StreamRequest request() const = 0;
  virtual StreamOutcome stream(const StreamRequest& request) = 0;
  // What the barrier needs: the sink streamed into and the rows this rank converted to serving dtypes.
  virtual const Sink& sink() const = 0;
  virtual const QuantizationLedger& quantization() const = 0;
  // 5 and 6, rank 0 after the barrier: every rank's results collected, the metadata written and the export
  // published, or on failure its staging directory removed. Returns the job's status.
  virtual int finish_on_root(BarrierOutcome& barrier, const StreamRequest& request,
                             std::chrono::steady_clock::time_point stream_start) = 0;
  // Rank 0, when 1 or 2 failed: what was staged goes.
  virtual void discard() = 0;
};

// Runs `job`'s stages in order on every rank; `report` is the run record rank 0 keeps. Every rank returns rank 0's
// verdict, so mpirun's status is the job's.
ExitCode run_job(Job& job, Comm& comm, RunReport& report);

}  // namespace recis_convert
