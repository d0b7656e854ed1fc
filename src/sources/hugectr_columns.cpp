#include "recis_convert/sources/hugectr_columns.h"

#include <cstring>

namespace recis_convert {

size_t HugectrColumns::column_of(const std::string& slot) {
  return slot == "id" ? kKeys : slot == "embedding" ? kVectors : kSlotIds;
}

uint64_t HugectrColumns::row_bytes(size_t column) const {
  return column == kVectors ? reader_.table().vec_size * sizeof(float) : 8;
}

Status HugectrColumns::read(uint64_t first, uint64_t n, const std::vector<uint32_t>* kept,
                            unsigned char* const* into) {
  auto read = reader_.read_into(first, n, reinterpret_cast<int64_t*>(into[kKeys]),
                                reinterpret_cast<float*>(into[kVectors]),
                                columns() > kSlotIds ? reinterpret_cast<uint64_t*>(into[kSlotIds]) : nullptr);
  if (!read || !kept) return read;
  for (size_t c = 0; c < columns(); ++c) {
    const uint64_t bytes = row_bytes(c);
    for (size_t k = 0; k < kept->size(); ++k) {
      if ((*kept)[k] != k) std::memmove(into[c] + k * bytes, into[c] + (*kept)[k] * bytes, bytes);
    }
  }
  return Ok{};
}

}  // namespace recis_convert
