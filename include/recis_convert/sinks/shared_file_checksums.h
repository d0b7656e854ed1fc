// The files every rank wrote into together (model.h5, a resharded file, a HugeCTR table's file) are checksummed
// after the barrier by every rank at once, each reading a contiguous share of their pieces (checksum.h,
// piece_plan.h), instead of rank 0 reading them all back alone: at N ranks, 1/N of the bytes each. `verify` checks
// an export's files with the same two steps (read_piece_share on every rank, join_piece_shares on rank 0).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/common/checksum.h"
#include "recis_convert/common/error.h"
#include "recis_convert/mpi/comm.h"

namespace recis_convert {

// A file every rank wrote into, as rank 0 sees it before they checksum it: its name and size.
struct SharedFile {
  std::string name;
  uint64_t bytes = 0;
};

using SharedFileDigests = std::map<std::string, FileDigest>;  // by file name in the staging directory

// A file to checksum in pieces of piece_bytes (0: the whole file is one piece); `bytes` gives its pieces' count.
struct PiecedFile {
  std::string path;
  uint64_t bytes = 0;
  uint64_t piece_bytes = 0;
};

// What one rank read: the checksums of its share of the files' pieces, in order (0 for a piece it could not read),
// the files it could not read or found short (indices), and why it could not read them. A signal stops the reading between spans, as an error
// (kInterrupted).
struct PieceShare {
  std::vector<uint64_t> pieces;
  std::vector<uint64_t> unreadable;
  std::vector<Error> errors;
  bool interrupted() const;
};

// Every rank: its contiguous share of all the files' pieces (share_of_pieces), read and checksummed.
PieceShare read_piece_share(const std::vector<PiecedFile>& files, int ranks, int rank);
// Rank 0: each file's checksum, joined from every rank's share (in rank order); none for a file a rank could not
// read, or whose pieces are not all there.
std::vector<std::optional<uint64_t>> join_piece_shares(const std::vector<PiecedFile>& files,
                                                       const std::vector<PieceShare>& shares);

// Every rank, once every rank has streamed successfully (a collective): rank 0 names the files
// (Sink::shared_files) and finds their sizes, every rank checksums its share of their pieces (of piece_bytes, the export's --chunk-mib), and rank 0
// gets each file's size and checksum (the others an empty map). A file that cannot be read is an output error,
// on rank 0; one rank's failure is every rank's.
Result<SharedFileDigests> checksum_shared_files(Comm& comm, const std::vector<std::string>& names_on_root,
                                                const std::string& dir, uint64_t piece_bytes);

}  // namespace recis_convert
