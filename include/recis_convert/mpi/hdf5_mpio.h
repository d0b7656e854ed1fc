// HDF5's MPI-IO driver on the job's communicator: the one place where HDF5 meets MPI, so that MPI's types stay in
// mpi/ (as ADIOS2's helper::CommAsMPI is the one door from its Comm to MPI_Comm).
#pragma once

#include <cstdint>
#include <string>

#include "recis_convert/common/error.h"
#include "recis_convert/mpi/comm.h"

namespace recis_convert {

// Sets the file-access property list `file_access` (an HDF5 hid_t) to MPI-IO over `comm`'s ranks, for the file at
// `path` (named in errors). Only MpiWorld has an MPI communicator: any other Comm is an internal error.
Status use_mpi_io(int64_t file_access, Comm& comm, const std::string& path);

}  // namespace recis_convert
