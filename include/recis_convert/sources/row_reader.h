// A source's rows as the row loop (pipeline/row_loop.h) reads them: the aligned columns of one work item (a
// tensor of a RecIS file with its part's ids beside it; a HugeCTR table's keys, vectors and slot ids), row
// ranges at a time. The reader knows the format; the loop knows what happens to rows.
#pragma once

#include <cstdint>
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

}  // namespace recis_convert
