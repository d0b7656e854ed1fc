// recis-convert: parse the command line (before MPI, so --help and usage errors need no MPI job), run the export,
// and turn its outcome into the process exit code. This is the only place that decides exit codes.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/fault_injection.h"
#include "recis_convert/commands/inspect.h"
#include "recis_convert/commands/merge.h"
#include "recis_convert/common/interrupt.h"
#include "recis_convert/mpi/launch_check.h"
#include "recis_convert/common/log.h"
#include "recis_convert/mpi/mpi_world.h"
#include "recis_convert/export_job.h"
#include "recis_convert/publish/staging.h"
#include "recis_convert/commands/verify.h"

namespace {

// Under mpirun every rank parses the same argv; only one should print help or usage errors.
bool is_first_rank_by_environment() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    if (const char* value = std::getenv(name)) return std::atoi(value) == 0;
  }
  return true;
}

// mpirun aborts the job as soon as one rank exits non-zero, so a usage error could kill rank 0 before it printed
// the message (seen at np 3 under ASan: exit 2 and no line). The other ranks leave it this long to print first.
constexpr useconds_t kUsageErrorGraceMicroseconds = 1'000'000;

// The stall watchdog's verdict (mpi/stall_watch.h), on the watchdog's thread: the main thread may be blocked in a
// collective that will never complete, so the process ends here. What the run staged goes (a --resume journal
// stays for the next run); the export lock goes with the process.
[[noreturn]] void stop_stalled_run(const std::string& line) {
  using namespace recis_convert;
  recis_convert::remove_staging_of_stopped_run();
  Log::error(line + "; stopped, nothing published");
  std::_Exit(static_cast<int>(ExitCode::kStalled));
}

}  // namespace

int main(int argc, char** argv) {
  using namespace recis_convert;
  CommandLine command = parse_command_line(argc, argv);
  if (command.action == CommandLine::Action::kExit) {
    if (is_first_rank_by_environment()) {
      if (command.exit_code == 0) {
        std::fputs(command.message.c_str(), stdout);
      } else {
        Log::error(command.message);
      }
    } else if (command.exit_code != 0) {
      ::usleep(kUsageErrorGraceMicroseconds);
    }
    return command.exit_code;
  }
  if (command.command == CommandLine::Command::kInspect) {
    // No MPI: inspect is a plain process (under mpirun every rank would print the same thing).
    auto inspection = inspect_path(command.inspect.path);
    if (!inspection) {
      Log::error(inspection.error().describe());
      return static_cast<int>(inspection.error().code);
    }
    std::fputs(command.inspect.json ? (inspection_json(inspection.value()).dump(2) + "\n").c_str()
                                    : inspection_text(inspection.value()).c_str(),
               stdout);
    return 0;
  }
  // before MPI_Init, which would fail in each task with a page of Open MPI's text
  if (auto split = detect_split_launch(std::getenv)) {
    if (is_first_rank_by_environment()) Log::error(*split);
    return static_cast<int>(ExitCode::kUsage);
  }
  MpiWorld world(&argc, &argv);
  install_interrupt_handlers();  // after MPI_Init, so ours are the ones in place
  set_fault_rank(world.rank());
  if (!world.watch_for_stalls(command.stall_timeout(), stop_stalled_run)) {
    Log(world.rank(), false, false).warn("--stall-timeout: this MPI library does not run threads (MPI_THREAD_MULTIPLE), so stalls are not "
              "watched");
  }
  ExitCode code = ExitCode::kInternal;
  try {
    switch (command.command) {
      case CommandLine::Command::kVerify:
        code = run_verify(command.verify, world);
        break;
      case CommandLine::Command::kMerge:
        code = run_merge(command.merge, world);
        break;
      default:
        code = run_export(command.options, world);
    }
  } catch (const std::exception& e) {
    // Only a bug (or std::bad_alloc) gets here: errors are values. Other ranks may be waiting in a collective,
    // so end the whole job; the staging directory was already removed while unwinding.
    Log::error(std::string("internal error on rank ") + std::to_string(world.rank()) + ": " + e.what());
    world.abort(static_cast<int>(ExitCode::kInternal));
  }
  return static_cast<int>(code);
}
