// A table from int64 ids to small indices, for a merge's joins (sources/delta_rows.h, sources/merged_export.h): a
// base part's share of the deltas' ids, at most half full, open addressing with linear probing. An id sits beside
// its index, so that a probe reads one cache line; ids are mixed first, as they are often multiples of a stride.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace recis_convert {

class IdIndex {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  // Room for `count` ids.
  explicit IdIndex(size_t count) {
    size_t capacity = 16;
    while (capacity < 2 * count) capacity *= 2;
    slots_.resize(count > 0 ? capacity : 0);
    mask_ = capacity - 1;
  }

  // murmur3's finalizer
  static uint64_t mix(int64_t id) {
    uint64_t x = static_cast<uint64_t>(id);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
  }

  // The index stored for `id`, or kNone.
  uint32_t find(int64_t id) const {
    if (slots_.empty()) return kNone;
    for (size_t at = home(id); slots_[at].index != 0; at = (at + 1) & mask_) {
      if (slots_[at].id == id) return slots_[at].index - 1;
    }
    return kNone;
  }
  // Stores `index` for `id` unless it has one; returns the one it has then. At most `count` ids.
  uint32_t insert(int64_t id, uint32_t index) {
    size_t at = home(id);
    for (; slots_[at].index != 0; at = (at + 1) & mask_) {
      if (slots_[at].id == id) return slots_[at].index - 1;
    }
    slots_[at] = Slot{id, index + 1};
    return index;
  }
  // Fetches the cache line `id` starts its probe at (lookups in flight: a large table is out of cache).
  void prefetch(int64_t id) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home(id)]);
  }

 private:
  struct Slot {
    int64_t id = 0;
    uint32_t index = 0;  // + 1; 0: empty
  };
  size_t home(int64_t id) const { return static_cast<size_t>(mix(id)) & mask_; }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace recis_convert
