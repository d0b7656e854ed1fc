#include "recis_convert/sources/row_reader.h"

#include <cstring>

namespace recis_convert {

void move_kept_rows_to_front(const RowReader& reader, const std::vector<uint32_t>& kept, unsigned char* const* into) {
  for (size_t c = 0; c < reader.columns(); ++c) {
    const uint64_t bytes = reader.row_bytes(c);
    for (size_t k = 0; k < kept.size(); ++k) {
      if (kept[k] != k) std::memmove(into[c] + k * bytes, into[c] + kept[k] * bytes, bytes);
    }
  }
}

SideBySide::SideBySide(std::vector<std::shared_ptr<RowReader>> readers) : readers_(std::move(readers)) {
  for (const auto& reader : readers_) {
    for (size_t c = 0; c < reader->columns(); ++c) columns_.push_back(Column{reader.get(), c});
  }
}

Status SideBySide::read(uint64_t first, uint64_t n, const std::vector<uint32_t>* kept, unsigned char* const* into) {
  for (const auto& reader : readers_) {  // each reads into its own columns' places, in order
    auto read = reader->read(first, n, kept, into);
    if (!read) return read;
    into += reader->columns();
  }
  return Ok{};
}

Status ColumnOf::read(uint64_t first, uint64_t n, const std::vector<uint32_t>* kept, unsigned char* const* into) {
  scratch_.resize(reader_->columns());
  std::vector<unsigned char*> places(reader_->columns());
  for (size_t c = 0; c < places.size(); ++c) {
    if (c == column_) {
      places[c] = into[0];
      continue;
    }
    scratch_[c].resize(n * reader_->row_bytes(c));
    places[c] = scratch_[c].data();
  }
  return reader_->read(first, n, kept, places.data());
}

}  // namespace recis_convert
