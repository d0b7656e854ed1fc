#include "recis_convert/sources/dcp_columns.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace recis_convert {

DcpTableColumns::DcpTableColumns(std::string dir, DcpTensor table)
    : dir_(std::move(dir)), table_(std::move(table)), element_bytes_(dtype_bits(table_.dtype) / 8),
      located_(table_.chunks.size()) {}

uint64_t DcpTableColumns::row_bytes(size_t column) const {
  return column == kIds ? sizeof(int64_t) : table_.shape[1] * element_bytes_;
}

namespace {

// A chunk's elements in its data file, the file opened through `files` (kept open for the tensor's other chunks).
Result<DcpChunkData> locate_chunk(OpenInputs& files, const std::string& dir, const DcpTensor& t, const DcpChunk& c) {
  const std::string path = dir + "/" + c.file;
  auto fd = files.fd(path);
  if (!fd) return fd.error();
  auto stamp = stamp_of(fd.value(), path);
  if (!stamp) return stamp.error();
  return locate_dcp_chunk(fd.value(), stamp.value().size, path, t, c);
}

}  // namespace

Result<DcpChunkData> DcpTableColumns::located(size_t chunk) {
  if (located_[chunk]) return *located_[chunk];
  auto data = locate_chunk(files_, dir_, table_, table_.chunks[chunk]);
  if (!data) return data.error();
  located_[chunk] = data.value();
  return data.value();
}

Result<std::string> read_dcp_tensor(const std::string& dir, const DcpTensor& t, uint64_t max_bytes) {
  const uint64_t element = dtype_bits(t.dtype) / 8;
  if (t.numel() > max_bytes / element) {
    return bad_input(dir + "/" + kDcpMetadataFile, "tensor \"" + t.fqn + "\" has " + std::to_string(t.numel()) +
                                                       " elements, more than a dense weight may (" +
                                                       std::to_string(max_bytes) + " bytes)");
  }
  std::string whole(t.numel() * element, '\0');
  const size_t dims = t.shape.size();
  std::vector<uint64_t> stride(dims, 1);  // of the whole tensor, in elements
  for (size_t d = dims; d-- > 1;) stride[d - 1] = stride[d] * t.shape[d];
  OpenInputs files;
  for (const DcpChunk& c : t.chunks) {
    if (c.numel() == 0) continue;
    auto data = locate_chunk(files, dir, t, c);
    if (!data) return data.error();
    const std::string path = dir + "/" + c.file;
    std::string chunk(c.numel() * element, '\0');
    auto got = read_exact(files.fd(path).value(), data.value().offset, chunk.size(), chunk.data(), path,
                          "tensor \"" + t.fqn + "\"");
    if (!got) return got.error();
    // the chunk's innermost runs, each to its place in the whole (a 0-d tensor is one run of one element)
    const uint64_t run = dims == 0 ? 1 : c.sizes[dims - 1];
    std::vector<uint64_t> at(dims, 0);  // the run's index within the chunk
    for (uint64_t r = 0; r < c.numel() / run; ++r) {
      uint64_t place = 0;
      for (size_t d = 0; d < dims; ++d) place += (c.offsets[d] + at[d]) * stride[d];
      std::memcpy(&whole[place * element], &chunk[r * run * element], run * element);
      for (size_t d = dims == 0 ? 0 : dims - 1; d-- > 0;) {  // the next run: count up the outer dimensions
        if (++at[d] < c.sizes[d]) break;
        at[d] = 0;
      }
    }
  }
  return whole;
}

Status DcpRowIndices::read(uint64_t first, uint64_t n, const std::vector<uint32_t>* kept,
                           unsigned char* const* into) {
  int64_t* ids = reinterpret_cast<int64_t*>(into[0]);
  const uint64_t count = kept ? kept->size() : n;
  for (uint64_t r = 0; r < count; ++r) ids[r] = static_cast<int64_t>(first + (kept ? (*kept)[r] : r));
  return Ok{};
}

Status DcpTableColumns::read(uint64_t first, uint64_t n, const std::vector<uint32_t>* kept,
                             unsigned char* const* into) {
  int64_t* ids = reinterpret_cast<int64_t*>(into[kIds]);
  for (uint64_t r = 0; r < n; ++r) ids[r] = static_cast<int64_t>(first + r);  // torchrec's id: the row index
  const uint64_t row = row_bytes(kEmbeddings);
  for (size_t i = 0; i < table_.chunks.size(); ++i) {
    const DcpChunk& c = table_.chunks[i];
    const uint64_t begin = std::max(first, c.offsets[0]), end = std::min(first + n, c.offsets[0] + c.sizes[0]);
    if (begin >= end || c.sizes[1] == 0) continue;  // not in the range, or empty
    auto data = located(i);
    if (!data) return data.error();
    const uint64_t piece = c.sizes[1] * element_bytes_;  // this chunk's part of a row
    const uint64_t at = data.value().offset + (begin - c.offsets[0]) * piece;
    const std::string path = dir_ + "/" + c.file;
    const int fd = files_.fd(path).value();  // opened when the chunk was located
    unsigned char* place = into[kEmbeddings] + (begin - first) * row;
    if (piece == row) {
      auto got = read_exact(fd, at, (end - begin) * row, place, path, "tensor \"" + table_.fqn + "\"");
      if (!got) return got;
      continue;
    }
    scratch_.resize((end - begin) * piece);
    auto got = read_exact(fd, at, scratch_.size(), scratch_.data(), path, "tensor \"" + table_.fqn + "\"");
    if (!got) return got;
    const uint64_t column = c.offsets[1] * element_bytes_;
    for (uint64_t r = 0; r < end - begin; ++r) std::memcpy(place + r * row + column, scratch_.data() + r * piece, piece);
  }
  if (kept) move_kept_rows_to_front(*this, *kept, into);
  return Ok{};
}

}  // namespace recis_convert
