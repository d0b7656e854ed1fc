// SIGTERM/SIGINT/SIGUSR1 handling. Slurm sends SIGTERM at the time limit (then SIGKILL after KillWait, typically
// 30 s); the batch script asks for SIGUSR1 before it (--signal=B:USR1@...) and forwards it to the launcher, which
// passes it to every rank (mpirun does so for SIGUSR1, where it answers SIGTERM by killing the job and exiting 1).
// Each rank stops at the next buffer boundary, the ranks still agree at the barrier, and rank 0 removes the staging
// directory, so nothing is published and the exit code is 5.
#pragma once

#include <optional>

#include "recis_convert/common/error.h"

namespace recis_convert {

// Installs the handlers (idempotent). Without them a signal kills the process and the next run removes the
// staging directory it left.
void install_interrupt_handlers();

// The signal received, or 0. Safe to poll often (one relaxed atomic load).
int interrupt_signal();

// kInterrupted "interrupted by SIGTERM" once a signal arrived, else nullopt. The same text on every rank, so
// rank 0 prints it once.
std::optional<Error> interruption();

}  // namespace recis_convert
