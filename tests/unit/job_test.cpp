// The orchestrator's stage order (job.h) with a scripted job on the one-rank communicator: what runs after a
// failure, and what rank 0's verdict is.
#include "recis_convert/job.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "recis_convert/cli/cli.h"
#include "recis_convert/mpi/comm.h"
#include "recis_convert/transforms/job_transforms.h"

namespace recis_convert {
namespace {

class NoSink final : public Sink {
 public:
  StreamOutcome stream(const StreamRequest&, Comm&, const Log&) const override { return {}; }
};

// Records the stages it is asked for; fails where it is told to.
class ScriptedJob final : public Job {
 public:
  std::vector<std::string> stages;
  std::optional<Error> fail_discover, fail_plan, fail_stream;
  int finished_with = -1;

  Status discover() override { return step("discover", fail_discover); }
  Status plan() override { return step("plan", fail_plan); }
  StreamRequest request() const override {
    return StreamRequest{options_, source_, transforms_, mine_, pieces_, 0, ""};
  }
  StreamOutcome stream(const StreamRequest&) override {
    stages.push_back("stream");
    StreamOutcome out;
    out.failure = fail_stream;
    return out;
  }
  const Sink& sink() const override { return sink_; }
  const QuantizationLedger& quantization() const override { return quantization_; }
  int finish_on_root(BarrierOutcome& barrier, const StreamRequest&, std::chrono::steady_clock::time_point) override {
    stages.push_back("finish");
    finished_with = barrier.agreed;
    return barrier.agreed;
  }
  void discard() override { stages.push_back("discard"); }

 private:
  Status step(const char* name, const std::optional<Error>& failure) {
    stages.push_back(name);
    if (failure) return *failure;
    return Ok{};
  }
  JobOptions options_;
  SourceDescription source_;
  RowTransformChain transforms_;
  std::vector<size_t> mine_;
  std::vector<WorkItem> pieces_;
  NoSink sink_;
  QuantizationLedger quantization_;
};

// The job run on one rank, with a run record of its own.
ExitCode run(ScriptedJob& job) {
  SerialComm comm;
  JobOptions o;
  RunReport report(o, "host", 1);
  return run_job(job, comm, report);
}

TEST(RunJobTest, RunsTheStagesInTheUsersOrder) {
  ScriptedJob job;
  EXPECT_EQ(run(job), ExitCode::kOk);
  EXPECT_EQ(job.stages, (std::vector<std::string>{"discover", "plan", "stream", "finish"}));
}

TEST(RunJobTest, AFailedDiscoveryStopsBeforeThePlanAndDiscardsTheStaging) {
  ScriptedJob job;
  job.fail_discover = bad_input("ckpt", "no index");
  EXPECT_EQ(run(job), ExitCode::kBadInput);
  EXPECT_EQ(job.stages, (std::vector<std::string>{"discover", "discard"}));
}

TEST(RunJobTest, AFailedPlanStreamsNothing) {
  ScriptedJob job;
  job.fail_plan = output_error("out", "cannot create");
  EXPECT_EQ(run(job), ExitCode::kOutput);
  EXPECT_EQ(job.stages, (std::vector<std::string>{"discover", "plan", "discard"}));
}

TEST(RunJobTest, AStreamFailureReachesTheFinishAsTheAgreedStatus) {
  ScriptedJob job;
  job.fail_stream = output_error("out/model.safetensors", "disk full");
  EXPECT_EQ(run(job), ExitCode::kOutput);
  EXPECT_EQ(job.finished_with, static_cast<int>(ExitCode::kOutput));
  EXPECT_EQ(job.stages, (std::vector<std::string>{"discover", "plan", "stream", "finish"}));
}

}  // namespace
}  // namespace recis_convert
