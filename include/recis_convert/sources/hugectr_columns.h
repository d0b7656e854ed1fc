// The RowReader of a HugeCTR table (pipeline/row_loop.h): its keys, vectors and slot ids as the columns of one
// row range, read together.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "recis_convert/formats/hugectr_sparse.h"
#include "recis_convert/sources/row_reader.h"

namespace recis_convert {

class HugectrColumns final : public RowReader {
 public:
  static constexpr size_t kKeys = 0, kVectors = 1, kSlotIds = 2;

  explicit HugectrColumns(const HugectrSparseTable& table) : reader_(table) {}
  // The column of an exported slot: id, embedding or slot_id.
  static size_t column_of(const std::string& slot);

  size_t columns() const override { return reader_.table().has_slot_id ? 3 : 2; }
  uint64_t row_bytes(size_t column) const override;
  // HugeCTR's arrays are read whole for a range: `kept` rows are then moved to the front.
  Status read(uint64_t first, uint64_t n, const std::vector<uint32_t>* kept, unsigned char* const* into) override;

 private:
  HugectrRowReader reader_;
};

}  // namespace recis_convert
