// A value through one rank-to-rank message and back, as every rank decodes it (mpi/messages.h).
#pragma once

#include "recis_convert/mpi/comm.h"
#include "recis_convert/mpi/messages.h"

namespace recis_convert::testing {

template <typename T>
Result<T> round_trip(const T& value) {
  SerialComm comm;
  return broadcast_value(comm, value, "test");
}

}  // namespace recis_convert::testing
