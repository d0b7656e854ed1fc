// The rows of the deltas a merge applies, by id (commands/merge.h): for every table, where the newest delta row
// of each id lies, and the ids in order of first appearance (delta order, then each delta's parts in key order,
// then row order), which is the order new ids are appended in. Every rank builds it alike from the deltas'
// headers and id tensors: its memory follows the deltas' ids (about 40 bytes each), not the base's size.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <optional>
#include <utility>
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

  // A table's ids (an index into DeltaRows' tables, stable once read), so that a merge looks up one part's ids
  // without a string compare per row; nullopt for a table no delta has.
  std::optional<uint32_t> table_index(const std::string& table) const;
  const Location* find(uint32_t table, int64_t id) const;
  const Location* find(const std::string& table, int64_t id) const;
  // Starts loading where find(table, id) will look (a merge looks up every base row: most are cache misses).
  void prefetch(uint32_t table, int64_t id) const { tables_[table].rows.prefetch(id); }
  // The position of a found id in ids_in_order(table).
  size_t ordinal(uint32_t table, const Location* at) const { return static_cast<size_t>(at - tables_[table].rows.data()); }
  const std::vector<int64_t>& ids_in_order(const std::string& table) const;  // empty for a table no delta has
  const Part& part(uint32_t index) const { return parts_[index]; }
  // A dense tensor ("name^ ") of the newest delta that has it, or nullptr.
  const RowColumn* dense(const std::string& key) const;
  uint64_t id_count() const;

 private:
  // Open addressing with linear probing, at most half full: a merge looks up every base row's id, and a
  // std::unordered_map's node per id made that the largest cost (and 64 bytes per id).
  class IdTable {
   public:
    // The location of `id`, added (with `at`) if new; second: whether it was added.
    std::pair<Location*, bool> insert(int64_t id, Location at);
    void reserve(size_t ids);  // room for this many ids without growing
    const Location* find(int64_t id) const;
    void prefetch(int64_t id) const {
      if (!slots_.empty()) __builtin_prefetch(&slots_[home(id)]);
    }
    size_t size() const { return locations_.size(); }
    const Location* data() const { return locations_.data(); }  // in order of insertion

   private:
    struct Slot {
      int64_t key = 0;
      uint32_t index = 0;  // 0: empty, else index + 1 into locations_
    };
    static uint64_t hash(int64_t id);
    // The first slot to probe: the hash scaled to the capacity (multiply-shift), so the capacity need not be a
    // power of two and a reserved table is exactly twice its ids (a power of two cost up to 4x).
    size_t home(int64_t id) const {  // exact for up to 2^32 slots (2^31 ids)
      return static_cast<size_t>(((hash(id) >> 32) * slots_.size()) >> 32);
    }
    size_t next(size_t i) const { return i + 1 == slots_.size() ? 0 : i + 1; }
    void rehash(size_t capacity);
    std::vector<Slot> slots_;  // key and index side by side: one cache miss per probe
    std::vector<Location> locations_;
  };
  struct Table {
    IdTable rows;
    std::vector<int64_t> order;
  };
  std::vector<Part> parts_;
  std::vector<Table> tables_;
  std::map<std::string, uint32_t> table_index_;
  std::map<std::string, RowColumn> dense_;
};

}  // namespace recis_convert
