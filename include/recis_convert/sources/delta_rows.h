// The rows of the deltas a merge applies, by id (commands/merge.h): for every table, where the newest delta row
// of each id lies, and when the id first appeared (delta order, then each delta's parts in key order, then row
// order), which is the order new ids are appended in. Every rank builds it alike from the deltas' headers and id
// tensors. A table's ids are kept sorted by their slice residue (id % 65536), so the ids a base part can hold are
// one contiguous run (in_slice): the merge joins each part with its own run, in a small table that stays in cache,
// not with every id of the table. Memory: 32 bytes per id, not the base's size.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <optional>
#include <utility>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/formats/safetensors.h"
#include "recis_convert/plan/slices.h"
#include "recis_convert/sources/checkpoint.h"

namespace recis_convert {

// A tensor's rows in a data file.
struct RowColumn {
  std::string path;       // the data file
  std::string key;        // the tensor's key, for messages
  TensorInfo tensor;      // as in its header
  uint64_t offset = 0;    // absolute offset of its first byte
  uint64_t rows() const { return tensor.shape.empty() ? 0 : tensor.shape[0]; }
  uint64_t row_bytes() const;  // from the shape and dtype, so an empty tensor has one too
};

class DeltaRows {
 public:
  struct Location {
    uint32_t part = 0;  // index into part()
    uint64_t row = 0;
  };
  struct Entry {
    int64_t id = 0;
    Location at;          // its newest row
    uint64_t first = 0;  // when it first appeared, over all the deltas' ids (the order new ids are appended in)
  };
  struct Part {
    std::string table;
    std::map<std::string, RowColumn> slots;  // by slot name
  };

  // The ids a rank keeps: per table, the slice residues of the base parts it merges (the parts with a slot in one
  // of its files). A table it has no part of keeps none.
  using Residues = std::map<std::string, std::vector<bool>>;  // table -> kSliceSize flags
  static Residues residues_of(const CheckpointListing& base, const std::vector<bool>& files);

  // Reads the headers and id tensors of `deltas` (oldest first), keeping the ids of `wanted` (all when null). A
  // sparse part without an `id`, or whose slots disagree with its id's row count, is bad input naming the file and
  // tensor.
  static Result<DeltaRows> read(const std::vector<CheckpointListing>& deltas, const Residues* wanted = nullptr);

  // The ids of `table` whose residue id % 65536 lies in [slice.begin, slice.end), each once, sorted by residue then
  // id; empty for a table no delta has.
  std::pair<const Entry*, const Entry*> in_slice(const std::string& table, const Slice& slice) const;
  const Entry* find(const std::string& table, int64_t id) const;  // nullptr when no delta has the id
  // A table's ids in order of first appearance (for messages and tests; empty for a table no delta has).
  std::vector<int64_t> ids_in_order(const std::string& table) const;
  const Part& part(uint32_t index) const { return parts_[index]; }
  // A dense tensor ("name^ ") of the newest delta that has it, or nullptr.
  const RowColumn* dense(const std::string& key) const;
  uint64_t id_count() const;    // the ids kept, each once
  uint64_t rows_read() const { return rows_read_; }  // the deltas' id rows read, kept or not

 private:
  std::vector<Part> parts_;
  std::map<std::string, std::vector<Entry>> tables_;  // each sorted by residue, then id
  std::map<std::string, RowColumn> dense_;
  uint64_t rows_read_ = 0;
};

}  // namespace recis_convert
