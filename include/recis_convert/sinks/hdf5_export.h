// Writes model.h5 with parallel HDF5: every rank opens the file with the MPI-IO driver, creates the same datasets
// collectively (pre-sized from the Hdf5Layout, contiguous, fill time never), then writes its own pieces in
// collective rounds (a rank without a piece in a round selects nothing), memory type = file type so the
// transfer stays collective. The MPI-IO driver is set up in mpi/hdf5_mpio.h, so no MPI type is here.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/error.h"
#include "recis_convert/mpi/comm.h"
#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/plan/eviction_plan.h"
#include "recis_convert/plan/hdf5_layout.h"
#include "recis_convert/sinks/reshard_writer.h"

namespace recis_convert {

// A model.pt tensor for /dense/<name>; `data` is filled on rank 0 only.
struct DenseDataset {
  std::string name;  // --dense-name prefix stripped
  DType dtype = DType::kF32;
  std::vector<uint64_t> shape;
  std::string data;  // contiguous little-endian bytes (rank 0)
};

struct Hdf5Attributes {
  std::string tool_version;
  std::string source_checkpoint;
};

// --hdf5-transfer auto: collective MPI-IO (two-phase I/O: aggregators gather the ranks' pieces and write large
// blocks) where that helps, on parallel and network file systems (Lustre, GPFS, BeeGFS, NFS...; and any file system
// not known to be local); independent on local ones (tmpfs, ext4, XFS, btrfs...), where every rank's piece is
// already one large contiguous write and the aggregation only moves each byte once more (measured: 2 GiB, np 2,
// /dev/shm: 0.75-1.18 s collective, 0.41-0.45 s independent). `why` says which and why, for the log.
struct Hdf5TransferChoice {
  bool collective = true;
  std::string why;
};
Hdf5TransferChoice choose_hdf5_transfer(Hdf5Transfer asked, const std::string& dir);
// The auto choice for a file system type (statfs's f_type).
Hdf5TransferChoice transfer_for_filesystem(int64_t f_type);

// What this rank knows of the tensors it reads, by (file, tensor key) as the pieces name them (WritePiece): the
// eviction decisions of those whose pieces are selected (WritePiece::selected), and the rows that stand in for a
// tensor's own (a merge's: file_export.h RowsFrom; its pieces count those rows, and this rank reads them all; a DCP
// table's, stitched from its chunks). A decision whose embedding rows no file holds as an array (a DCP table's)
// reads them from `decision_rows`.
using PieceKey = std::pair<std::string, std::string>;
struct PieceSources {
  std::map<PieceKey, std::shared_ptr<const PartSelection>> selections;
  std::map<PieceKey, RowsFrom> rows;
  std::map<PieceKey, std::shared_ptr<RowReader>> decision_rows;
};

// Collective over all ranks. With `reshard`, the routed pieces' rows go where its placements say (each round a
// union of row runs, one per target part). Read failures of a rank's own pieces do not break the collective sequence: the rank
// keeps taking part, writing nothing, and reports its error at the end.
Status write_hdf5_export(const std::string& path, const Hdf5Layout& plan, const std::vector<DenseDataset>& dense,
                         const CheckpointListing& listing, const Hdf5Attributes& attributes, Comm& comm,
                         size_t buffer_bytes, bool collective, bool fsync_file, const PieceSources& sources,
                         const ReshardShare* reshard,
                         const std::function<void(uint64_t bytes, uint64_t datasets)>& progress = {});

}  // namespace recis_convert
