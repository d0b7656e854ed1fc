#include "recis_convert/job.h"

#include "recis_convert/mpi/messages.h"

namespace recis_convert {

using Clock = std::chrono::steady_clock;

ExitCode run_job(Job& job, Comm& comm, RunReport& report) {
  Status ready = job.discover();  // 1
  if (ready) ready = job.plan();  // 2
  if (!ready) {  // alike on every rank: rank 0 says it once, and nothing is published
    if (comm.is_root()) {
      report_failure(ready.error(), report);
      job.discard();
    }
    return ready.error().code;
  }
  const auto stream_start = Clock::now();  // 3
  const StreamRequest request = job.request();
  StreamOutcome streamed = job.stream(request);
  BarrierOutcome agreed = agree_and_gather(comm, job.sink(), request, streamed, job.quantization(),  // 4
                                           seconds_since(stream_start), stream_start, report);
  int status = agreed.agreed;
  if (comm.is_root()) status = job.finish_on_root(agreed, request, stream_start);  // 5, 6
  auto verdict = broadcast_value(comm, status, "verdict");
  return static_cast<ExitCode>(verdict ? verdict.value() : static_cast<int>(ExitCode::kInternal));
}

}  // namespace recis_convert
