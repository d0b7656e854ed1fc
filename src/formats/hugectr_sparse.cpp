#include "recis_convert/formats/hugectr_sparse.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "recis_convert/common/file_io.h"

namespace recis_convert {
namespace {

constexpr uint64_t kSlotBytes = 8;   // size_t
constexpr uint64_t kFloatBytes = 4;

Result<uint64_t> file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return bad_input(path, std::string("cannot read: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return bad_input(path, "not a regular file");
  return static_cast<uint64_t>(st.st_size);
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string bytes_text(uint64_t n) { return std::to_string(n) + " bytes"; }

// rows * width, or nothing on overflow.
bool fits(uint64_t rows, uint64_t width) { return width == 0 || rows <= std::numeric_limits<uint64_t>::max() / width; }

Status read_file_rows(const std::string& path, uint64_t first, uint64_t count, uint64_t row_bytes, void* out) {
  auto fd = open_input_file(path);
  if (!fd) return fd.error();
  return read_exact(fd.value().get(), first * row_bytes, static_cast<size_t>(count * row_bytes), out, path,
                    "rows " + std::to_string(first) + ".." + std::to_string(first + count));
}

}  // namespace

Result<HugectrSparseTable> describe_hugectr_sparse(const std::string& path, uint64_t vec_size,
                                                   const HugectrLegacyLayout& legacy) {
  if (vec_size == 0) return bad_input(path, "embedding_vec_size is 0");
  if (!fits(vec_size, kFloatBytes)) return bad_input(path, "embedding_vec_size is too large");
  HugectrSparseTable table;
  table.path = path;
  table.vec_size = vec_size;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return bad_input(path, std::string("cannot read: ") + std::strerror(errno));

  if (S_ISDIR(st.st_mode)) {
    table.format = HugectrSparseFormat::kDirectory;
    auto key_bytes = file_size(path + "/key");
    if (!key_bytes) return key_bytes.error();
    auto vector_bytes = file_size(path + "/emb_vector");
    if (!vector_bytes) return vector_bytes.error();
    if (key_bytes.value() % 8 != 0) {
      return bad_input(path + "/key", bytes_text(key_bytes.value()) + " is not a whole number of int64 keys");
    }
    table.rows = key_bytes.value() / 8;
    const uint64_t row_bytes = vec_size * kFloatBytes;
    if (!fits(table.rows, row_bytes) || vector_bytes.value() != table.rows * row_bytes) {
      return bad_input(path + "/emb_vector", bytes_text(vector_bytes.value()) + ", expected " +
                                                 std::to_string(table.rows) + " keys x " + std::to_string(vec_size) +
                                                 " floats = " + bytes_text(table.rows * row_bytes));
    }
    if (exists(path + "/slot_id")) {
      auto slot_bytes = file_size(path + "/slot_id");
      if (!slot_bytes) return slot_bytes.error();
      if (slot_bytes.value() != table.rows * kSlotBytes) {
        return bad_input(path + "/slot_id", bytes_text(slot_bytes.value()) + ", expected " + std::to_string(table.rows) +
                                                " slot ids = " + bytes_text(table.rows * kSlotBytes));
      }
      table.has_slot_id = true;
    }
    return table;
  }
  if (!S_ISREG(st.st_mode)) return bad_input(path, "neither a sparse model directory nor a file");

  table.format = HugectrSparseFormat::kLegacyFile;
  if (legacy.key_bytes != 4 && legacy.key_bytes != 8) return bad_input(path, "legacy keys must be 4 or 8 bytes");
  table.key_bytes = legacy.key_bytes;
  table.has_slot_id = legacy.localized;
  table.record_bytes = legacy.key_bytes + (legacy.localized ? kSlotBytes : 0) + vec_size * kFloatBytes;
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size % table.record_bytes != 0) {
    return bad_input(path, bytes_text(size) + " is not a whole number of " + bytes_text(table.record_bytes) +
                               " records (key " + std::to_string(legacy.key_bytes) + (legacy.localized ? " + slot id 8" : "") +
                               " + " + std::to_string(vec_size) + " floats); " + std::to_string(size % table.record_bytes) +
                               " bytes left over");
  }
  table.rows = size / table.record_bytes;
  return table;
}

Status HugectrRowReader::read(uint64_t first, uint64_t count, HugectrRows& out) {
  out.keys.resize(count);
  out.vectors.resize(count * table_.vec_size);
  out.slot_ids.resize(table_.has_slot_id ? count : 0);
  return read_into(first, count, out.keys.data(), out.vectors.data(), out.slot_ids.data());
}

Status HugectrRowReader::read_into(uint64_t first, uint64_t count, int64_t* keys, float* vectors, uint64_t* slot_ids) {
  const HugectrSparseTable& t = table_;
  if (first > t.rows || count > t.rows - first) {
    return Error{ExitCode::kInternal, t.path, "rows " + std::to_string(first) + "+" + std::to_string(count) +
                                                 " outside the table's " + std::to_string(t.rows)};
  }
  if (count == 0) return Ok{};
  if (t.format == HugectrSparseFormat::kDirectory) {
    auto read = read_file_rows(t.path + "/key", first, count, 8, keys);
    if (!read) return read;
    read = read_file_rows(t.path + "/emb_vector", first, count, t.vec_size * kFloatBytes, vectors);
    if (!read) return read;
    if (t.has_slot_id) return read_file_rows(t.path + "/slot_id", first, count, kSlotBytes, slot_ids);
    return Ok{};
  }
  records_.resize(count * t.record_bytes);
  auto read = read_file_rows(t.path, first, count, t.record_bytes, records_.data());
  if (!read) return read;
  for (uint64_t r = 0; r < count; ++r) {
    const unsigned char* record = records_.data() + r * t.record_bytes;
    if (t.key_bytes == 8) {
      std::memcpy(&keys[r], record, 8);
    } else {
      uint32_t key = 0;
      std::memcpy(&key, record, 4);
      keys[r] = static_cast<int64_t>(key);  // HugeCTR's 4-byte keys are unsigned int
    }
    const unsigned char* rest = record + t.key_bytes;
    if (t.has_slot_id) {
      std::memcpy(&slot_ids[r], rest, kSlotBytes);
      rest += kSlotBytes;
    }
    std::memcpy(vectors + r * t.vec_size, rest, t.vec_size * kFloatBytes);
  }
  return Ok{};
}

RowRange rows_of_rank(uint64_t rows, int world_size, int rank) {
  const uint64_t size = static_cast<uint64_t>(world_size > 0 ? world_size : 1);
  const uint64_t r = static_cast<uint64_t>(rank);
  const uint64_t base = rows / size, extra = rows % size;
  return RowRange{r * base + std::min(r, extra), base + (r < extra ? 1 : 0)};
}

}  // namespace recis_convert
