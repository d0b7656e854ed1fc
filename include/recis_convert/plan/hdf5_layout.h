// The layout of model.h5 (--format hdf5), computed identically on every rank from the header summaries of all
// data files (an allgather), so that every rank makes the same collective HDF5 calls with the same arguments.
// Pure: no MPI, no HDF5 calls, unit-tested on hand-made summaries.
//
//   /sparse/<child>/id            int64 [N]: all rows of the table, parts concatenated
//   /sparse/<child>/<slot>        [N, ...], rows in the order of `id`, after the row transforms (an int8 embedding
//                                 is uint8 [N, dim + 8] with attribute quantization = "int8_rowwise")
//   /sparse/<child>/parts         int64 [P, 5]: slice begin, slice end, slice size, first row, rows; parts ordered by
//                                 slice and then source rank, so a reader can rebuild RecIS's shards (with eviction,
//                                 the rows that stay)
//   /optimizer/<name>             dense optimizer scalars of the checkpoint, when not filtered
//   /dense/<name>                 model.pt tensors (written by rank 0)
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/formats/safetensors.h"
#include "recis_convert/sources/source_tensor.h"
#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

// A contiguous run of rows that one rank copies with one H5Dwrite.
struct WritePiece {
  int owner = 0;
  std::string file;
  uint64_t source_offset = 0;  // absolute, in the data file
  uint64_t first_row = 0;      // in the dataset
  uint64_t rows = 0;
  uint64_t tensor_offset = 0;  // absolute offset of the source tensor the rows belong to (row numbers in messages)
  // The tensor's part has an eviction decision: `rows` counts kept rows, which the owner picks as it reads the
  // tensor's pieces in order (source_offset is then unknown in advance and unused).
  bool selected = false;
  // --reshard: the piece is `rows` source rows of tensor `tensor` from source_offset, which its owner routes to
  // their target parts (each a run of rows where that part's placement says); first_row is unused.
  bool routed = false;
  std::string tensor;  // the source tensor's key: with `file`, what its owner knows of it is found by it
};

struct DatasetLayout {
  std::string path;            // "/sparse/user_id/embedding"
  DType dtype = DType::kU8;
  std::vector<uint64_t> dims;  // full dataset shape; for a table slot dims[0] is the table's rows
  uint64_t row_bytes = 0;      // bytes of one row (of the whole dataset if it has no rows dimension)
  uint64_t source_row_bytes = 0;  // bytes of one row as read (differs from row_bytes when rows are rewritten)
  std::shared_ptr<const SlotRows> rewrite;  // the row transforms that rewrite these rows, or null: copied as read
  std::vector<WritePiece> pieces;
  std::vector<uint64_t> target_first_row;  // --reshard: the dataset row where each target part begins
  // Collective rounds: every rank calls H5Dwrite this many times (selecting nothing once out of pieces).
  size_t rounds(int world_size) const;
  std::vector<WritePiece> pieces_of(int rank) const;
};

struct PartRow {
  uint64_t slice_begin = 0, slice_end = 0, slice_size = 0, first_row = 0, rows = 0;
};

struct TableLayout {
  std::string child;
  uint64_t rows = 0;
  uint64_t embedding_dim = 0;
  std::vector<PartRow> parts;
  std::vector<DatasetLayout> slots;  // id first, then embedding, then the others sorted
};

struct Hdf5Layout {
  std::vector<TableLayout> tables;             // sorted by child
  std::vector<DatasetLayout> optimizer;        // sorted by name
};

// The pieces of the files in `large` (a file too large for one rank's fair share: piece_plan.h) go to the ranks
// with the fewest bytes to read so far, largest first, instead of all to the file's owner; the others stay with
// their owners (as do the pieces of selected or routed rows, which their owner reads in order). Every rank gets the
// same result from the same plan.
void spread_large_files(Hdf5Layout& plan, const std::set<std::string>& large, int world_size);

// The bytes `rank` reads and writes for its pieces.
struct PieceBytes {
  uint64_t read = 0;
  uint64_t written = 0;
};
PieceBytes bytes_of_rank(const Hdf5Layout& plan, int rank);

// What one HDF5 dataset can be: at most 32 dimensions (HDF5's H5S_MAX_RANK), and its name one link, so that
// "/sparse/<table>/<slot>" and "/dense/<name>" make no group the layout did not plan. A tensor beyond either is
// bad input (exit 3), refused before anything is written, not an HDF5 failure (exit 4).
inline constexpr size_t kMaxHdf5Rank = 32;
bool is_hdf5_link_name(const std::string& name);

// `max_piece_bytes` bounds the rows one piece carries (the copy buffer); a single larger row is its own piece.
// Each table slot's rows go through `transforms` (prepared once per slot, the same on every rank).
// `target_rows` (--reshard M): per table, its kept rows in each of the M target parts; the datasets then hold the
// parts in target order, and `parts` describes the M parts.
Result<Hdf5Layout> lay_out_hdf5(const std::vector<SourceTensor>& tensors, uint64_t max_piece_bytes, const std::string& ckpt_dir,
                           const RowTransformChain& transforms = RowTransformChain(),
                           const std::map<std::string, std::vector<uint64_t>>* target_rows = nullptr);

}  // namespace recis_convert
