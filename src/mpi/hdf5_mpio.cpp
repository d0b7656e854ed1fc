#include "recis_convert/mpi/hdf5_mpio.h"

#include <hdf5.h>
#include <mpi.h>

#include "recis_convert/mpi/mpi_world.h"

namespace recis_convert {

Status use_mpi_io(int64_t file_access, Comm& comm, const std::string& path) {
  // MpiWorld's ranks are MPI_COMM_WORLD's (mpi_world.h)
  if (dynamic_cast<MpiWorld*>(&comm) == nullptr) {
    return Error{ExitCode::kInternal, path, "HDF5's MPI-IO needs the MPI communicator, not a stand-in"};
  }
  if (H5Pset_fapl_mpio(static_cast<hid_t>(file_access), MPI_COMM_WORLD, MPI_INFO_NULL) < 0) {
    return output_error(path, "HDF5 cannot use MPI-IO");
  }
  return Ok{};
}

}  // namespace recis_convert
