// A source's rows as the row loop (pipeline/row_loop.h) reads them: the aligned columns of one work item (a
// tensor of a RecIS file with its part's ids beside it; a HugeCTR table's keys, vectors and slot ids), row
// ranges at a time. The reader knows the format; the loop knows what happens to rows.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "recis_convert/common/error.h"

namespace recis_convert {

class RowReader {
 public:
  virtual ~RowReader() = default;

  virtual size_t columns() const = 0;
  virtual uint64_t row_bytes(size_t column) const = 0;
  // Reads rows [first, first + n) of every column into into[column] (room for n rows each), back to back; with
  // `kept` (offsets from `first`, ascending), only those rows. Read failures are kBadInput naming the file.
  virtual Status read(uint64_t first, uint64_t n, const std::vector<uint32_t>* kept,
                      unsigned char* const* into) = 0;
};

// For a reader that reads a whole range: the `kept` rows (offsets, ascending) of every column moved to its front.
void move_kept_rows_to_front(const RowReader& reader, const std::vector<uint32_t>& kept, unsigned char* const* into);

// The columns of several readers of the same rows, side by side: a merged slot beside its part's merged ids, which
// route it (--reshard), as a file's tensor sits beside its part's id column in one ColumnReader.
class SideBySide final : public RowReader {
 public:
  explicit SideBySide(std::vector<std::shared_ptr<RowReader>> readers);
  size_t columns() const override { return columns_.size(); }
  uint64_t row_bytes(size_t column) const override { return columns_[column].reader->row_bytes(columns_[column].own); }
  Status read(uint64_t first, uint64_t n, const std::vector<uint32_t>* kept, unsigned char* const* into) override;

 private:
  struct Column {
    RowReader* reader = nullptr;
    size_t own = 0;  // its index in its reader
  };
  std::vector<std::shared_ptr<RowReader>> readers_;
  std::vector<Column> columns_;
};

// One column of another reader as a reader of its own (its column 0): a DCP table's rows without their ids, where a
// sink takes each slot as a tensor of its own (model.h5). The other columns are read into scratch the size of the
// range and dropped.
class ColumnOf final : public RowReader {
 public:
  ColumnOf(std::shared_ptr<RowReader> reader, size_t column) : reader_(std::move(reader)), column_(column) {}
  size_t columns() const override { return 1; }
  uint64_t row_bytes(size_t) const override { return reader_->row_bytes(column_); }
  Status read(uint64_t first, uint64_t n, const std::vector<uint32_t>* kept, unsigned char* const* into) override;

 private:
  std::shared_ptr<RowReader> reader_;
  size_t column_;
  std::vector<std::vector<unsigned char>> scratch_;  // by column
};

}  // namespace recis_convert
