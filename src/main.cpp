// recis-convert: parse the command line (before MPI, so --help and usage errors need no MPI job), run the export,
// and turn its outcome into the process exit code. This is the only place that decides exit codes.

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
#include "recis_convert/metadata/run_report.h"
#include "recis_convert/publish/export_location.h"
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

// Whether some rank refused the command line that rank 0 accepted (see main): rank 0 says the first such error, with
// its rank and node, and every rank learns it. One gather and one broadcast of a few bytes per run.
bool command_line_refused(recis_convert::Comm& comm, const std::string& refusal) {
  std::string first;
  for (const std::string& r : comm.gather_to_root(refusal)) {
    if (!r.empty()) {
      first = r;
      break;
    }
  }
  if (comm.is_root() && !first.empty()) recis_convert::Log::error(first);
  return comm.broadcast_from_root(first.empty() ? "" : "refused") == "refused";
}

// The stall watchdog's verdict (mpi/stall_watch.h), on the watchdog's thread: the main thread may be blocked in a
// collective that will never complete, so the process ends here. What the run staged goes (a --resume journal
// stays for the next run); the export lock goes with the process.
[[noreturn]] void stop_stalled_run(const std::string& verdict) {
  using namespace recis_convert;
  remove_staging_of_stopped_run();
  const std::string line = verdict + "; stopped, nothing published";
  Log::error(line);
  write_report_of_stopped_run(ExitCode::kStalled, line);
  std::_Exit(static_cast<int>(ExitCode::kStalled));
}

}  // namespace

int main(int argc, char** argv) {
  using namespace recis_convert;
  const bool first_rank = is_first_rank_by_environment();
  CommandLine command = parse_command_line(argc, argv, first_rank ? ParsingRank::kFirst : ParsingRank::kOther);
  // A usage error on another rank than the first: rank 0 may have accepted the same command line, since across
  // nodes each rank sees its own node's files (a --config on rank 0's node alone). Such a rank joins the job, and
  // rank 0 says its error once, naming its node (command_line_refused); if rank 0 refused the command line too, it
  // said so itself and mpirun ends the job.
  const bool refused_here = command.action == CommandLine::Action::kExit && command.exit_code != 0;
  const bool joins_to_say_so = refused_here && !first_rank && command.command != CommandLine::Command::kInspect;
  if (command.action == CommandLine::Action::kExit && !joins_to_say_so) {
    if (first_rank) {
      if (command.exit_code == 0) {
        std::fputs(command.message.c_str(), stdout);
      } else {
        Log::error(command.message);
      }
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
  const std::string refusal = joins_to_say_so ? command.message + " (rank " + std::to_string(world.rank()) + " on " +
                                                    host_name() + ", where rank 0 accepted it: the nodes see "
                                                    "different files)"
                                              : "";
  if (command_line_refused(world, refusal)) return static_cast<int>(ExitCode::kUsage);
  install_interrupt_handlers();  // after MPI_Init, so ours are the ones in place
  set_fault_rank(world.rank());
  if (!world.watch_for_stalls(command.stall_timeout(), stop_stalled_run)) {
    Log(world.rank(), false, false)
        .warn("--stall-timeout: this MPI library does not run threads (MPI_THREAD_MULTIPLE), so stalls are not watched");
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
