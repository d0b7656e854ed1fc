// Test-only fault injection, so that tests can make a chosen rank fail at a chosen point of the pipeline:
//   --debug-fail-at STAGE[*N]@RANK[:ACTION]     (hidden from --help)
// STAGE is one of discover, stream (after the first buffer of the first file), file (after a rank exported a
// whole data file), piece (after a rank wrote a piece of a split file), range (after a rank wrote its range
// of a row table's rows), barrier (before the agreement), hdf5 (mid-write), metadata, dense, publish (just before the
// rename), merge (after a rank's first merged file). *N fires at the N-th time the rank reaches the stage (default
// the first); RANK may be * for every rank.
// ACTION is kill (SIGKILL, the default), term (SIGTERM to this process, as Slurm would send), stall (wait up to 3 min, or until a signal arrives,
// so a test can signal the job at a known point), or pause (wait 3 s, then go on, so a test can change the
// source mid-run). A no-op unless the flag is given.
#pragma once

#include <string>

#include "recis_convert/common/error.h"

namespace recis_convert {

// Parses and arms the flag's value; an invalid spec is a usage error.
Status arm_fault(const std::string& spec);

// Called at each named point; acts only when the armed stage and this process's rank match.
void fault_point(const char* stage);

// The rank fault_point compares with (set once MPI is up).
void set_fault_rank(int rank);

}  // namespace recis_convert
