// The rows of the deltas a merge applies, by id (commands/merge.h): for every table, where the newest delta row
// of each id lies, and the ids in order of first appearance (delta order, then each delta's parts in key order,
// then row order), which is the order new ids are appended in. Every rank builds it alike from the deltas'
// headers and id tensors: its memory follows the deltas' ids, not the base's size.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/formats/safetensors.h"
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
  struct Part {
    std::string table;
    std::map<std::string, RowColumn> slots;  // by slot name
  };

  // Reads the headers and id tensors of `deltas` (oldest first). A sparse part without an `id`, or whose slots
  // disagree with its id's row count, is bad input naming the file and tensor.
  static Result<DeltaRows> read(const std::vector<CheckpointListing>& deltas);

  const Location* find(const std::string& table, int64_t id) const;
  const std::vector<int64_t>& ids_in_order(const std::string& table) const;  // empty for a table no delta has
  const Part& part(uint32_t index) const { return parts_[index]; }
  // A dense tensor ("name^ ") of the newest delta that has it, or nullptr.
  const RowColumn* dense(const std::string& key) const;
  uint64_t id_count() const;

 private:
  struct Table {
    std::unordered_map<int64_t, Location> rows;
    std::vector<int64_t> order;
  };
  std::vector<Part> parts_;
  std::map<std::string, Table> tables_;
  std::map<std::string, RowColumn> dense_;
};

}  // namespace recis_convert
