// Whether every rank reaches the staging directory rank 0 created. Across nodes, an export directory on a file
// system that is not shared (a node's /tmp or local disk) exists on rank 0's node only, and the other ranks would
// fail at their first file with "cannot create" and no word of which node (issue 36). Checked by every rank right
// after discovery, before any byte is written; refused as an output error naming the ranks and their hosts.
#pragma once

#include <string>

#include "recis_convert/common/error.h"
#include "recis_convert/mpi/comm.h"

namespace recis_convert {

// Collective. Ok when every rank sees `staging_dir` as a directory it may write into; otherwise kOutput naming
// `export_dir` and the ranks that do not, on every rank alike.
Status check_staging_reaches_every_rank(Comm& comm, const std::string& staging_dir, const std::string& export_dir);

}  // namespace recis_convert
