// How the work below the file is shared among ranks: the stream's files and pieces (a file larger than a rank's
// fair share is split into pieces of --chunk-mib, written by several ranks into the one output file, so that one
// huge file does not leave the other ranks idle; mpifileutils' dcp splits files for the same reason), and the
// pieces of files every rank checksums (checksum.h). Pure functions of sizes and the world size, unit-tested
// without MPI, so every rank computes the same plan.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "recis_convert/plan/rank_assignment.h"

namespace recis_convert {

// One unit of the stream's work: a whole data file, or piece `piece` of the `pieces` a large file is split into
// (its output's checksum pieces split as evenly as they go: piece_window).
struct WorkItem {
  size_t file = 0;
  uint32_t piece = 0;
  uint32_t pieces = 1;
  bool whole() const { return pieces == 1; }
};

struct WorkPlan {
  std::vector<int> owners;  // per file: the rank that exports it whole, or writes piece 0 and reports the file
  std::vector<std::vector<WorkItem>> items;  // per rank: its whole files in listing order, then its pieces
  std::vector<uint32_t> pieces;              // per file: 1, or the pieces it is split into
  bool split(size_t file) const { return pieces[file] > 1; }
  // Whether `rank` reads file f (exports it or a piece of it): the files whose blocks it needs.
  std::vector<bool> files_read_by(int rank) const;
  // The whole files of `rank` (indices into the listing, in order) and the pieces it writes.
  std::vector<size_t> whole_files_of_rank(int rank) const;
  std::vector<WorkItem> pieces_of_rank(int rank) const;
};

// Whole files are dealt as assign_files deals them. With piece_bytes > 0 and more than one rank, a file larger than
// a rank's fair share (all bytes / ranks) and than one piece is split instead into ceil(size / piece_bytes)
// pieces: with --balance size every file and piece goes largest first to the rank with the fewest bytes so far;
// with round-robin the whole files keep their ranks (file i to rank i % N) and the pieces go to the ranks with the
// fewest bytes so far (ties: the lowest rank).
WorkPlan plan_work(const std::vector<uint64_t>& file_sizes, int ranks, Balance balance, uint64_t piece_bytes);

// Piece k of n of a file whose output has `bytes` bytes, in output bytes [begin, end): the output's checksum
// pieces (of piece_bytes) split as evenly as they go, so a piece's writer checksums whole pieces. Some may be
// empty (an output smaller than the source).
struct ByteWindow {
  uint64_t begin = 0;
  uint64_t end = 0;
};
ByteWindow piece_window(uint64_t bytes, uint64_t piece_bytes, uint32_t piece, uint32_t pieces);

// Pieces [first, first + count) of file `file` (an index into the caller's list).
struct PieceSpan {
  size_t file = 0;
  uint64_t first = 0;
  uint64_t count = 0;
};

// Rank `rank`'s share when every rank reads some pieces of the files (each of piece_counts[i] pieces): the
// pieces, in file order, cut into `ranks` contiguous runs whose lengths differ by at most one. One span per file
// the run touches, in file order.
std::vector<PieceSpan> share_of_pieces(const std::vector<uint64_t>& piece_counts, int ranks, int rank);

}  // namespace recis_convert
