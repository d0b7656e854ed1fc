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

std::optional<std::string> detect_split_launch(int world_size, const EnvironmentLookup& getenv) {
  if (world_size != 1) return std::nullopt;
  // Started by mpirun: the world size is what the user asked for (-np 1 is allowed).
  if (getenv("OMPI_COMM_WORLD_SIZE") != nullptr) return std::nullopt;
  // srun sets SLURM_STEP_NUM_TASKS for the tasks of a step; SLURM_NTASKS alone is also set in the batch script
  // itself (where a plain `recis-convert` is a deliberate single-process run), so it counts only under srun.
  long tasks = number(getenv("SLURM_STEP_NUM_TASKS"));
  if (tasks == 0 && getenv("SLURM_STEP_ID") != nullptr) tasks = number(getenv("SLURM_NTASKS"));
  if (tasks <= 1) return std::nullopt;
  return "Slurm started " + std::to_string(tasks) +
         " tasks but MPI sees a world of 1 rank in each: they are independent copies, not one job. Launch with "
         "srun --mpi=pmix (see srun --mpi=list) or with mpirun inside the allocation; refusing to run";
}

}  // namespace recis_convert
