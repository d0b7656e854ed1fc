#include "recis_convert/mpi/launch_check.h"

#include <cstdlib>

namespace recis_convert {
namespace {

long number(const char* text) {
  if (text == nullptr || *text == '\0') return 0;
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  return *end == '\0' ? value : 0;
}

}  // namespace

std::optional<std::string> detect_split_launch(const EnvironmentLookup& getenv) {
  // Started by mpirun (the world is what the user asked for, -np 1 included), or by srun --mpi=pmix.
  if (getenv("OMPI_COMM_WORLD_SIZE") != nullptr || getenv("PMIX_RANK") != nullptr) return std::nullopt;
  // srun sets SLURM_STEP_NUM_TASKS for the tasks of a step; SLURM_NTASKS alone is also set in the batch script
  // itself (where a plain `recis-convert` is a deliberate single-process run), so it counts only under srun.
  long tasks = number(getenv("SLURM_STEP_NUM_TASKS"));
  if (tasks == 0 && getenv("SLURM_STEP_ID") != nullptr) tasks = number(getenv("SLURM_NTASKS"));
  if (tasks <= 1) return std::nullopt;
  return "Slurm started " + std::to_string(tasks) +
         " tasks without PMIx, so MPI cannot join them into one job (this Open MPI has no Slurm PMI-1/PMI-2 "
         "support): launch with srun --mpi=pmix (see srun --mpi=list) or with mpirun inside the allocation; "
         "refusing to run";
}

}  // namespace recis_convert
