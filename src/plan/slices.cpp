#include "recis_convert/plan/slices.h"

namespace recis_convert {

Slice gen_slice(uint32_t index, uint32_t count, uint32_t size) {
  const uint32_t base = size / count, longer = size % count;  // the first `longer` ranges hold base + 1
  const uint32_t begin = index < longer ? index * (base + 1) : longer * (base + 1) + (index - longer) * base;
  return Slice{begin, begin + base + (index < longer ? 1 : 0), size};
}

uint32_t part_of_id(int64_t id, uint32_t count, uint32_t size) {
  const uint32_t position = static_cast<uint32_t>(static_cast<uint64_t>(id) % size);
  const uint32_t base = size / count, longer = size % count;
  const uint32_t boundary = longer * (base + 1);  // where the one-longer ranges end
  return position < boundary ? position / (base + 1) : longer + (position - boundary) / base;
}

PartOfIdTable::PartOfIdTable(uint32_t count) : count_(count), parts_(kSliceSize) {
  for (uint32_t m = 0; m < count; ++m) {
    const Slice slice = gen_slice(m, count);
    for (uint32_t r = slice.begin; r < slice.end; ++r) parts_[r] = static_cast<uint16_t>(m);
  }
}

std::string slice_string(const Slice& slice) {
  const std::string size = std::to_string(slice.size);
  auto padded = [&size](uint32_t v) {
    std::string s = std::to_string(v);
    return std::string(size.size() > s.size() ? size.size() - s.size() : 0, '0') + s;
  };
  return padded(slice.begin) + "@" + padded(slice.end) + "@" + size;
}

std::optional<Slice> parse_slice(std::string_view text) {
  uint64_t values[3] = {0, 0, 0};
  size_t field = 0, digits = 0;
  for (char c : text) {
    if (c == '@') {
      if (digits == 0 || ++field > 2) return std::nullopt;
      digits = 0;
      continue;
    }
    if (c < '0' || c > '9' || ++digits > 10) return std::nullopt;
    values[field] = values[field] * 10 + static_cast<uint64_t>(c - '0');
  }
  if (field != 2 || digits == 0) return std::nullopt;
  if (values[2] == 0 || values[2] > UINT32_MAX || values[0] > values[1] || values[1] > values[2]) return std::nullopt;
  Slice slice{static_cast<uint32_t>(values[0]), static_cast<uint32_t>(values[1]), static_cast<uint32_t>(values[2])};
  if (slice_string(slice) != text) return std::nullopt;  // RecIS's zero padding, exactly
  return slice;
}

}  // namespace recis_convert
