#include "recis_convert/sources/column_reader.h"

#include <cstring>

#include "recis_convert/common/file_io.h"

namespace recis_convert {

// The gap is measured (bench/e2e.py, a 5% delta of dim-64 and dim-128 float rows, page cache): 1 KiB gaps took
// 1.7x the stream time of 16-64 KiB ones, where a pread's fixed cost no longer shows.
constexpr uint64_t kKeptRowGapBytes = 32u << 10;

Status read_kept_rows(int fd, uint64_t offset, uint64_t row_bytes, const std::vector<uint32_t>& kept,
                      unsigned char* out, const std::string& name, const std::string& what) {
  uint64_t written = 0;  // rows in `out` so far
  for (size_t a = 0; a < kept.size();) {
    size_t b = a + 1;  // the span is kept[a .. b)
    while (b < kept.size() && (kept[b] - kept[b - 1] - 1) * row_bytes <= kKeptRowGapBytes) ++b;
    const uint64_t first = kept[a], rows = kept[b - 1] + 1 - first;
    unsigned char* const span = out + written * row_bytes;  // at or before the span's rows' place: room enough
    auto read = read_exact(fd, offset + first * row_bytes, rows * row_bytes, span, name, what);
    if (!read) return read;
    for (size_t k = a; k < b;) {  // each run of consecutive kept rows moves back once (the moves never overlap
      size_t end = k + 1;          // forward, so memmove in order is safe)
      while (end < b && kept[end] == kept[end - 1] + 1) ++end;
      const unsigned char* from = span + (kept[k] - first) * row_bytes;
      unsigned char* to = out + written * row_bytes;
      if (to != from) std::memmove(to, from, (end - k) * row_bytes);
      written += end - k;
      k = end;
    }
    a = b;
  }
  return Ok{};
}

Status ColumnReader::read(uint64_t first, uint64_t n, const std::vector<uint32_t>* kept, unsigned char* const* into) {
  for (size_t c = 0; c < columns_.size(); ++c) {
    const FileColumn& column = columns_[c];
    const uint64_t at = column.offset + first * column.row_bytes;
    auto read = kept ? read_kept_rows(column.fd, at, column.row_bytes, *kept, into[c], column.path, column.what)
                     : read_exact(column.fd, at, n * column.row_bytes, into[c], column.path, column.what);
    if (!read) return read;
  }
  return Ok{};
}

}  // namespace recis_convert
