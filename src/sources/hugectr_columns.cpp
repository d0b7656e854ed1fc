#include "recis_convert/sources/hugectr_columns.h"

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
  move_kept_rows_to_front(*this, *kept, into);
  return Ok{};
}

}  // namespace recis_convert
