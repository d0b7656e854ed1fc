// The rows of the deltas a merge applies, by id (commands/merge.h). Reading the deltas reads their headers only:
// their parts (each a slice of one table) and dense tensors. A base part asks for the ids of its slice (in_slice),
// read then from the id tensors of the delta parts whose slices meet it: each id once, with its newest row and the
// row where it first appeared (delta order, then each delta's parts in key order, then row order: the order new ids
// are appended in). So a rank holds the ids of one base part at a time, not every delta id.
#pragma once

#include <cstdint>
#include <functional>
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
  // A row of a delta part; parts are numbered in delta order, then key order within a delta, so locations compare
  // in the order the ids appeared.
  struct Location {
    uint32_t part = 0;  // index into part()
    uint64_t row = 0;
    bool operator<(const Location& o) const { return part != o.part ? part < o.part : row < o.row; }
  };
  struct Entry {
    int64_t id = 0;
    Location at;     // its newest row
    Location first;  // where it first appeared (new ids are appended in this order)
  };
  struct Part {
    std::string table;
    Slice slice;                             // the residues its ids have
    std::map<std::string, RowColumn> slots;  // by slot name
  };

  // Reads the headers of `deltas` (oldest first). A sparse part without an `id`, whose id is not int64, whose slice
  // is not one RecIS writes, or whose slots disagree with its id's row count, is bad input naming the file and
  // tensor.
  static Result<DeltaRows> read(const std::vector<CheckpointListing>& deltas);

  // The ids of `table` whose residue id % 65536 lies in [slice.begin, slice.end), each once, in order of first
  // appearance; none for a table no delta has. Read from the deltas' id tensors (bad input naming one that cannot be read).
  Result<std::vector<Entry>> in_slice(const std::string& table, const Slice& slice) const;
  // The same ids as they lie in the deltas, repeats and all (in order of appearance), each to `visit`; a part's
  // join that would not fit memory reads them so (part_merge.h).
  using IdVisitor = std::function<Status(int64_t id, const Location& at)>;
  Status for_each_in_slice(const std::string& table, const Slice& slice, const IdVisitor& visit) const;
  // The id rows of the delta parts of `table` whose slices meet `slice`: at least as many as for_each_in_slice
  // visits.
  uint64_t rows_meeting(const std::string& table, const Slice& slice) const;
  // One id's entry, or nullopt when no delta has it (for tests and messages: it reads the id's slice).
  Result<std::optional<Entry>> find(const std::string& table, int64_t id) const;
  // A table's ids in order of first appearance (for tests: it reads them all).
  Result<std::vector<int64_t>> ids_in_order(const std::string& table) const;
  const Part& part(uint32_t index) const { return parts_[index]; }
  size_t part_count() const { return parts_.size(); }
  // Entries of rows in order of appearance, each id once: where it first appeared, with its newest row.
  static void keep_first_of_each(std::vector<Entry>& entries);
  // A dense tensor ("name^ ") of the newest delta that has it, or nullptr.
  const RowColumn* dense(const std::string& key) const;
  uint64_t rows() const;  // the deltas' id rows, over every part (an id in two deltas counts twice)

 private:
  std::vector<Part> parts_;
  std::map<std::string, RowColumn> dense_;
};

}  // namespace recis_convert
