// The files every rank wrote into together (model.h5, a resharded file, a HugeCTR table's file) are checksummed
// after the barrier by every rank at once, each reading a contiguous share of their pieces (checksum.h,
// piece_plan.h), instead of rank 0 reading them all back alone: at N ranks, 1/N of the bytes each.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "recis_convert/common/checksum.h"
#include "recis_convert/common/error.h"
#include "recis_convert/mpi/comm.h"
#include "recis_convert/sinks/sink.h"

namespace recis_convert {

using SharedFileDigests = std::map<std::string, FileDigest>;  // by file name in the staging directory

// Rank 0: the names of the files all ranks of this stream wrote into together (none for a dry run, or when each
// file is one rank's).
std::vector<std::string> shared_output_files(const StreamRequest& request);

// Every rank, once every rank has streamed successfully (a collective): rank 0 names the files and finds their
// sizes, every rank checksums its share of their pieces (of piece_bytes, the export's --chunk-mib), and rank 0
// gets each file's size and checksum (the others an empty map). A file that cannot be read is an output error,
// on rank 0; one rank's failure is every rank's.
Result<SharedFileDigests> checksum_shared_files(Comm& comm, const std::vector<std::string>& names_on_root,
                                                const std::string& dir, uint64_t piece_bytes);

}  // namespace recis_convert
