// Detects a job launched wrongly for MPI, before MPI_Init. The common Slurm mistake is `srun -n 4 recis-convert
// ...` without PMIx (no --mpi=pmix, or --mpi=pmi2): Slurm starts 4 processes that nothing joins into one MPI job.
// Debian's Open MPI 4.1 is built with PMIx only, so MPI_Init itself fails in each of them with a page of
// "OMPI was not built with SLURM's PMI support" and exit 1 (an MPI built with PMI-2 would instead give each a world
// of 1 rank, and each would export the whole checkpoint into the same directory). Such a process has neither
// mpirun's environment (OMPI_COMM_WORLD_SIZE) nor PMIx's (PMIX_RANK), and is one of several tasks of its step.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace recis_convert {

using EnvironmentLookup = std::function<const char*(const char*)>;  // std::getenv, or a fake in tests

// A one-line explanation if this process is one of N tasks that MPI cannot join; nullopt if the launch is fine.
std::optional<std::string> detect_split_launch(const EnvironmentLookup& getenv);

}  // namespace recis_convert
