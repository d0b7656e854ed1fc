// Detects a job launched wrongly for MPI, before it does any work. The common Slurm mistake is `srun -n 4
// recis-convert ...` without PMI support (e.g. missing --mpi=pmix): Slurm starts 4 independent processes, each
// sees an MPI world of size 1, and each would export the whole checkpoint into the same directory. Such a
// process has no mpirun environment (OMPI_COMM_WORLD_SIZE) and is one of several tasks of its Slurm step.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace recis_convert {

using EnvironmentLookup = std::function<const char*(const char*)>;  // std::getenv, or a fake in tests

// A one-line explanation if this process looks like one of N single-rank copies; nullopt if the launch is fine.
std::optional<std::string> detect_split_launch(int world_size, const EnvironmentLookup& getenv);

}  // namespace recis_convert
