// The RowReader (sources/row_reader.h) of a Distributed Checkpoint's table: the row index as the `id` column (int64)
// and the table's rows as `embedding`, stitched from its chunks one row range at a time. A chunk as wide as the table
// (row-wise, table-wise) is read straight into place; a narrower one (column-wise) into a scratch buffer the size
// of its part of the range, then set beside the others. So memory is the range's, whatever the table's size. Each
// chunk is located in its data file (formats/dcp_item.h) when a range first needs it; each data file is opened once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/dcp_item.h"
#include "recis_convert/formats/dcp_metadata.h"
#include "recis_convert/sources/row_reader.h"

namespace recis_convert {

class DcpTableColumns final : public RowReader {
 public:
  static constexpr size_t kIds = 0, kEmbeddings = 1;

  // `dir`: the DCP directory; `table`: a 2-D tensor of its checked metadata.
  DcpTableColumns(std::string dir, DcpTensor table);

  size_t columns() const override { return 2; }
  uint64_t row_bytes(size_t column) const override;
  Status read(uint64_t first, uint64_t n, const std::vector<uint32_t>* kept, unsigned char* const* into) override;

 private:
  Result<DcpChunkData> located(size_t chunk);

  std::string dir_;
  DcpTensor table_;
  uint64_t element_bytes_;
  OpenInputs files_;  // each data file, opened once
  std::vector<std::optional<DcpChunkData>> located_;  // by chunk
  std::vector<unsigned char> scratch_;
};

// A tensor of any shape read whole, its chunks set in place (a dense weight; at most `max_bytes`, else kBadInput
// naming it). Each chunk is located in its data file as the table's are.
Result<std::string> read_dcp_tensor(const std::string& dir, const DcpTensor& tensor, uint64_t max_bytes);

// A DCP table's ids alone (int64, column 0): its row indices, which need no read of its chunks.
class DcpRowIndices final : public RowReader {
 public:
  size_t columns() const override { return 1; }
  uint64_t row_bytes(size_t) const override { return sizeof(int64_t); }
  Status read(uint64_t first, uint64_t n, const std::vector<uint32_t>* kept, unsigned char* const* into) override;
};

}  // namespace recis_convert
