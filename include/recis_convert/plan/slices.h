// RecIS's sharding of a table by id (recis-checkpoint.md §4.5): part `index` of `count` holds the ids with
// `id % 65536` in gen_slice(index, count), a contiguous range; the first `65536 % count` ranges are one longer.
// tensorkey.json names a part's range as "<begin>@<end>@<size>", begin and end zero-padded to the width of size.
// Pure functions: the reshard plan and its tests use them, without MPI.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace recis_convert {

inline constexpr uint32_t kSliceSize = 65536;  // RecIS's slice_size, the same for every table it writes

struct Slice {
  uint32_t begin = 0;
  uint32_t end = kSliceSize;
  uint32_t size = kSliceSize;

  bool operator==(const Slice& o) const { return begin == o.begin && end == o.end && size == o.size; }
};

// RecIS's gen_slice(shard_index, shard_num, slice_size); count >= 1, index < count, count <= size.
Slice gen_slice(uint32_t index, uint32_t count, uint32_t size = kSliceSize);

// The part of `count` whose gen_slice range holds `id % size` (the id as an unsigned 64-bit number, as RecIS's
// loader reads it).
uint32_t part_of_id(int64_t id, uint32_t count, uint32_t size = kSliceSize);

// part_of_id(id, count) for many ids: a table of the part of every residue (128 KiB), so that routing a row costs a
// mask and a load instead of three divisions (it was a quarter of a resharded export's CPU time).
class PartOfIdTable {
 public:
  explicit PartOfIdTable(uint32_t count);
  uint32_t operator()(int64_t id) const { return parts_[static_cast<uint64_t>(id) & (kSliceSize - 1)]; }
  uint32_t count() const { return count_; }

 private:
  uint32_t count_;
  std::vector<uint16_t> parts_;  // count <= 65536: a part number fits
};

// "00000@21846@65536"; parse_slice accepts exactly that form (nullopt otherwise).
std::string slice_string(const Slice& slice);
std::optional<Slice> parse_slice(std::string_view text);

}  // namespace recis_convert
