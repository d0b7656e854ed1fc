// Which rows of a part stay, read from the part's decision columns (its `step_filter` for --evict-older-than,
// its `embedding` for --evict-l2-below) a chunk at a time. The count pass uses it to size every exported slot of
// the part; the write pass uses it again beside each slot's rows, so no rank ever holds a part's decisions whole:
// memory is one chunk of each column, whatever the part's size. A row stays when every rule given keeps it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/safetensors.h"
#include "recis_convert/sources/checkpoint.h"

namespace recis_convert {

// A tensor's rows inside a data file.
struct DecisionColumn {
  std::string path;              // the data file
  std::string tensor;            // its key, for messages
  uint64_t offset = 0;           // absolute offset of its first row in the file
  uint64_t rows = 0;
  DType dtype = DType::kI64;
  uint64_t row_elements = 1;     // 1 for step_filter ([N, 1]), the dim for embedding
};

struct PartDecision {
  std::optional<DecisionColumn> step_filter;  // with --evict-older-than (tables that have the slot)
  int64_t global_step = 0;
  uint64_t older_than = 0;
  std::optional<DecisionColumn> embedding;    // with --evict-l2-below
  float l2_below = 0;

  bool decides() const { return step_filter.has_value() || embedding.has_value(); }
  uint64_t rows() const;  // the part's rows (every column has them; checked by RowSelector::open)
};

// One part of a table: the table and RecIS's part suffix ("part_0_3", which fixes its slice).
struct PartId {
  std::string table;
  std::string part;
  bool operator<(const PartId& o) const { return table != o.table ? table < o.table : part < o.part; }
  bool operator==(const PartId& o) const { return table == o.table && part == o.part; }
};

// A decision column found in a data file, and whose part it decides.
struct LocatedColumn {
  PartId part;
  std::string slot;  // "step_filter" or "embedding"
  DecisionColumn column;
};

// The decision columns of one data file, from its checked header and its keys classified as decide_data_file
// classifies them (keys[i] for header.tensors[i]): every step_filter slot when `by_step`, every embedding slot
// when `by_norm`. In header order.
std::vector<LocatedColumn> decision_columns_in(const SafetensorsHeader& header, const std::vector<KeyClass>& keys,
                                               const std::string& path, bool by_step, bool by_norm);

class RowSelector {
 public:
  // Checks the columns (int64 [N, 1] step_filter; a float embedding; equal row counts: else bad input naming the
  // part's tensor) and opens their files.
  static Result<RowSelector> open(const PartDecision& decision);

  uint64_t rows() const { return rows_; }
  // How many rows one decide() may cover: the columns' chunks stay within 1 MiB each.
  uint64_t chunk_rows() const { return chunk_rows_; }
  // keep[i] for rows [first, first + n), n <= chunk_rows(); returns how many stay.
  Result<uint64_t> decide(uint64_t first, uint64_t n, unsigned char* keep);
  // The rows that stay in the whole part.
  Result<uint64_t> count_kept();

 private:
  static constexpr uint64_t kChunkBytes = 1u << 20;
  Status read_rows(const DecisionColumn& column, const FileDescriptor& fd, uint64_t first, uint64_t n);

  PartDecision decision_;
  uint64_t rows_ = 0;
  uint64_t chunk_rows_ = 1;
  std::unique_ptr<FileDescriptor> step_filter_file_, embedding_file_;
  std::vector<unsigned char> column_;  // one chunk of one column, as in the file
  std::vector<float> values_;          // an embedding chunk as float32
};

}  // namespace recis_convert
