#include "recis_convert/sinks/packed_file_results.h"

#include "recis_convert/common/byte_codec.h"

namespace recis_convert {
namespace {

constexpr uint32_t kByName = UINT32_MAX;  // a tensor the packing rank's catalog does not list

// Without a catalog every tensor goes by name.
void write_tensors(ByteWriter& w, const std::vector<TensorInfo>& tensors, const BlockCatalog* blocks) {
  w.u64(tensors.size());
  for (const auto& t : tensors) {
    const auto index = blocks ? blocks->find_index(t.name) : std::nullopt;
    w.u32(index ? static_cast<uint32_t>(*index) : kByName);
    if (!index) w.text(t.name);
    w.text(t.dtype_spelling);
    w.u32(static_cast<uint32_t>(t.shape.size()));
    for (uint64_t d : t.shape) w.u64(d);
    w.u64(t.begin);
    w.u64(t.end);
  }
}

bool read_tensors(ByteReader& r, std::vector<TensorInfo>& tensors, const PackedFileResults::NameOf* name_of) {
  uint64_t count = 0;
  if (!r.u64(count) || count > r.remaining()) return false;
  tensors.resize(count);
  for (auto& t : tensors) {
    uint32_t index = 0;
    if (!r.u32(index)) return false;
    if (index == kByName) {
      if (!r.text(t.name)) return false;
    } else {
      auto name = name_of ? (*name_of)(index) : std::nullopt;
      if (!name) return false;
      t.name = std::string(*name);
    }
    uint32_t rank = 0;
    if (!r.text(t.dtype_spelling) || !r.u32(rank) || rank > r.remaining()) return false;
    // The dtype travels as its header spelling, which our own reader accepted: it always parses.
    t.dtype = parse_dtype(t.dtype_spelling).value_or(DType::kU8);
    t.shape.resize(rank);
    for (auto& d : t.shape) {
      if (!r.u64(d)) return false;
    }
    if (!r.u64(t.begin) || !r.u64(t.end)) return false;
  }
  return true;
}

}  // namespace

void PackedFileResults::add(const FileResult& f, const BlockCatalog& blocks) {
  pieces_.emplace_back();
  ByteWriter w(pieces_.back());
  w.text(f.name);
  w.u64(f.source_bytes);
  w.u8(f.written ? 1 : 0);
  w.u64(f.output_bytes);
  w.u64(f.checksum);
  write_tensors(w, f.kept, &blocks);
  write_tensors(w, f.dropped, &blocks);
  ++count_;
}

std::optional<std::vector<FileResult>> PackedFileResults::unpack(const NameOf& name_of) const {
  std::vector<FileResult> out;
  for (const std::string& piece : pieces_) {
    ByteReader r(piece);
    while (!r.at_end()) {
      FileResult f;
      uint8_t written = 0;
      if (!r.text(f.name) || !r.u64(f.source_bytes) || !r.u8(written) || written > 1 || !r.u64(f.output_bytes) ||
          !r.u64(f.checksum) || !read_tensors(r, f.kept, &name_of) || !read_tensors(r, f.dropped, &name_of)) {
        return std::nullopt;
      }
      f.written = written == 1;
      out.push_back(std::move(f));
    }
  }
  if (out.size() != count_) return std::nullopt;
  return out;
}

std::string PackedFileResults::encode() const {
  size_t size = 8;
  for (const auto& piece : pieces_) size += piece.size();
  std::string out;
  out.reserve(size);
  ByteWriter(out).u64(count_);
  for (const auto& piece : pieces_) out += piece;
  return out;
}

std::optional<PackedFileResults> PackedFileResults::decode(std::string_view bytes) {
  ByteReader r(bytes);
  uint64_t count = 0;
  if (!r.u64(count) || count > bytes.size()) return std::nullopt;
  PackedFileResults out;
  out.pieces_.emplace_back(bytes.substr(8));
  out.count_ = count;  // checked against the pieces by unpack()
  return out;
}

std::string pack_tensors(const std::vector<TensorInfo>& tensors) {
  std::string out;
  ByteWriter w(out);
  write_tensors(w, tensors, nullptr);
  return out;
}

bool unpack_tensors(std::string_view bytes, std::vector<TensorInfo>& tensors) {
  ByteReader r(bytes);
  return read_tensors(r, tensors, nullptr) && r.at_end();
}

}  // namespace recis_convert
