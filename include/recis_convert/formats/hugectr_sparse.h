// HugeCTR sparse embedding tables as they lie on disk (torcheasyrec-hugectr.md B.2.1, B.2.2), described and
// checked once; rows are then streamed in bounded pieces.
//
//   directory (v3.1+):  <name>.model/key        int64 x N
//                       <name>.model/emb_vector float32 x N x vec
//                       <name>.model/slot_id    uint64 x N      (localized embeddings only)
//   legacy file (<= v3.0): N packed records {key (4 or 8 bytes), [uint64 slot_id if localized], float32 x vec}
//
// No header, no padding, little-endian; row n of every file belongs to key n. Sizes are the only integrity check
// there is, so every mismatch is an error stating expected and actual bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"

namespace recis_convert {

enum class HugectrSparseFormat { kDirectory, kLegacyFile };

struct HugectrSparseTable {
  std::string path;  // the .model directory or the legacy file
  HugectrSparseFormat format = HugectrSparseFormat::kDirectory;
  uint64_t rows = 0;
  uint64_t vec_size = 0;
  bool has_slot_id = false;
  uint32_t key_bytes = 8;     // on disk; 8 in the directory format, 4 or 8 in the legacy format
  uint64_t record_bytes = 0;  // legacy format: bytes per record

  // Bytes of one row as arrays: int64 key, vec_size float32, uint64 slot id if any (the directory format's rows,
  // and what a row becomes in an export).
  uint64_t row_bytes() const { return 8 + vec_size * 4 + (has_slot_id ? 8 : 0); }
};

// How to read a legacy single file (the directory format says it all itself). From the graph: the key type
// (solver.input_key_type I32 -> 4 bytes, I64 -> 8) and whether the embedding is localized (has slot ids).
struct HugectrLegacyLayout {
  uint32_t key_bytes = 8;
  bool localized = false;
};

// Describes and checks the table at `path` (a directory: the v3.1+ format; a regular file: the legacy format),
// whose rows have `vec_size` floats (from the graph's embedding_vec_size). Errors are kBadInput naming the file.
Result<HugectrSparseTable> describe_hugectr_sparse(const std::string& path, uint64_t vec_size,
                                                   const HugectrLegacyLayout& legacy);

// Rows of a table, read in pieces: keys widened to int64 (a 4-byte legacy key is unsigned), vectors as float32
// bytes, slot ids as uint64 (empty when the table has none).
struct HugectrRows {
  std::vector<int64_t> keys;
  std::vector<float> vectors;  // rows x vec_size
  std::vector<uint64_t> slot_ids;
};

class HugectrRowReader {
 public:
  explicit HugectrRowReader(HugectrSparseTable table) : table_(std::move(table)) {}

  // Reads rows [first, first + count) into `out` (resized). Errors (a file that shrank, I/O) are kBadInput.
  Status read(uint64_t first, uint64_t count, HugectrRows& out);
  // The same into arrays with room for `count` rows (slot_ids unused without slot ids).
  Status read_into(uint64_t first, uint64_t count, int64_t* keys, float* vectors, uint64_t* slot_ids);

  const HugectrSparseTable& table() const { return table_; }

 private:
  HugectrSparseTable table_;
  std::vector<unsigned char> records_;  // legacy format: raw records of one piece
};

// Contiguous row ranges of `rows` over `world_size` ranks (the first rows % size ranks get one more row): a
// table's rows are split, not its files, since large tables are few and big. Returns {first, count} of `rank`.
struct RowRange {
  uint64_t first = 0;
  uint64_t count = 0;
};
RowRange rows_of_rank(uint64_t rows, int world_size, int rank);

}  // namespace recis_convert
