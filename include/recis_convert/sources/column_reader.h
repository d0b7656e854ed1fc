// The RowReader of tensors in files (a RecIS checkpoint's or export's safetensors data files): each column is a
// tensor's rows at an offset of an open file. Kept rows are read in spans (read_kept_rows), so a delta that keeps
// few rows reads few bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "recis_convert/sources/row_reader.h"

namespace recis_convert {

struct FileColumn {
  int fd = -1;
  std::string path;      // the file, for messages
  std::string what;      // the tensor, for messages: tensor "user_id.embedding/part_0_3"
  uint64_t offset = 0;   // absolute offset of the column's row 0
  uint64_t row_bytes = 0;
};

class ColumnReader final : public RowReader {
 public:
  explicit ColumnReader(std::vector<FileColumn> columns) : columns_(std::move(columns)) {}
  size_t columns() const override { return columns_.size(); }
  uint64_t row_bytes(size_t column) const override { return columns_[column].row_bytes; }
  Status read(uint64_t first, uint64_t n, const std::vector<uint32_t>* kept, unsigned char* const* into) override;

 private:
  std::vector<FileColumn> columns_;
};

// Reads the `kept` rows (offsets from the row at `offset`, ascending) of `row_bytes` each into `out`, back to back.
// Kept rows less than kKeptRowGapBytes apart are read as one span with the rows between, which are then dropped;
// farther ones by separate reads; no kept row, no read. `out` needs room for kept.back() + 1 rows: a span is
// read at the place of the rows kept so far, and moved back from there.
Status read_kept_rows(int fd, uint64_t offset, uint64_t row_bytes, const std::vector<uint32_t>& kept,
                      unsigned char* out, const std::string& name, const std::string& what);

}  // namespace recis_convert
