#include "recis_convert/sources/block_catalog.h"

#include <algorithm>
#include <cstring>

#include <xxhash.h>

#include "recis_convert/common/byte_codec.h"

namespace recis_convert {

BlockCatalog::Block BlockCatalog::operator[](size_t i) const {
  const Entry& e = entries_[i];
  const std::string_view text(text_);
  return {text.substr(e.at, e.key_size), e.file, text.substr(e.at + e.key_size, e.logical_size)};
}

size_t BlockCatalog::sparse_size() const {
  return static_cast<size_t>(
      std::count_if(entries_.begin(), entries_.end(), [](const Entry& e) { return e.logical_size > 0; }));
}

void BlockCatalog::build_lookup() {
  size_t capacity = 16;
  while (capacity < 2 * entries_.size()) capacity *= 2;
  lookup_.assign(capacity, 0);
  for (size_t i = 0; i < entries_.size(); ++i) {
    const uint64_t hash = XXH3_64bits(text_.data() + entries_[i].at, entries_[i].key_size);
    size_t slot = hash & (capacity - 1);
    while (lookup_[slot] != 0) slot = (slot + 1) & (capacity - 1);
    lookup_[slot] = (hash & 0xffffffff00000000ull) | (i + 1);
  }
}

std::optional<size_t> BlockCatalog::find_index(std::string_view key) const {
  if (lookup_.empty()) return std::nullopt;
  const uint64_t hash = XXH3_64bits(key.data(), key.size());
  const size_t mask = lookup_.size() - 1;
  for (size_t slot = hash & mask; lookup_[slot] != 0; slot = (slot + 1) & mask) {
    const uint64_t value = lookup_[slot];
    if ((value ^ hash) >> 32 != 0) continue;
    const size_t i = static_cast<size_t>(value & 0xffffffffu) - 1;
    if (key_of(entries_[i]) == key) return i;
  }
  return std::nullopt;
}

std::optional<BlockCatalog::Block> BlockCatalog::find(std::string_view key) const {
  auto index = find_index(key);
  if (!index) return std::nullopt;
  return (*this)[*index];
}

BlockCatalog BlockCatalog::of_files(const std::vector<bool>& wanted) const {
  BlockCatalog out;
  for (const Entry& e : entries_) {
    if (!this->wanted(e, &wanted)) continue;
    Entry copy = e;
    copy.at = out.text_.size();
    out.text_.append(text_, e.at, e.key_size + e.logical_size);
    out.entries_.push_back(copy);  // stays sorted: a subsequence of a sorted list
  }
  out.build_lookup();
  return out;
}

std::string BlockCatalog::encode() const { return encode(nullptr); }

std::string BlockCatalog::encode_of_files(const std::vector<bool>& wanted) const { return encode(&wanted); }

std::string BlockCatalog::encode(const std::vector<bool>* wanted) const {
  uint64_t count = 0, text_size = 0;
  for (const Entry& e : entries_) {
    if (!this->wanted(e, wanted)) continue;
    ++count;
    text_size += uint64_t{e.key_size} + e.logical_size;
  }
  std::string out;
  out.reserve(16 + count * 12 + text_size);
  ByteWriter w(out);
  w.u64(count);
  for (const Entry& e : entries_) {
    if (!this->wanted(e, wanted)) continue;
    w.u32(e.key_size);
    w.u32(e.logical_size);
    w.u32(e.file);
  }
  w.u64(text_size);
  for (const Entry& e : entries_) {
    if (this->wanted(e, wanted)) out.append(text_, e.at, e.key_size + e.logical_size);
  }
  return out;
}

std::optional<BlockCatalog> BlockCatalog::decode(std::string_view bytes) {
  ByteReader in(bytes);
  BlockCatalog out;
  uint64_t count = 0;
  if (!in.u64(count) || count > bytes.size() / 12) return std::nullopt;
  out.entries_.resize(count);
  uint64_t at = 0;
  for (Entry& e : out.entries_) {
    if (!in.u32(e.key_size) || !in.u32(e.logical_size) || !in.u32(e.file)) return std::nullopt;
    e.at = at;
    at += uint64_t{e.key_size} + e.logical_size;
  }
  uint64_t text_size = 0;
  if (!in.u64(text_size) || text_size != at || !in.raw(out.text_, text_size) || !in.at_end()) return std::nullopt;
  out.build_lookup();
  return out;
}

void BlockCatalog::Builder::add(std::string_view key, uint32_t file, std::string_view logical) {
  pending_.push_back({key, file, logical});
}

BlockCatalog BlockCatalog::Builder::finish() && {
  auto by_key = [](const Pending& a, const Pending& b) { return a.key < b.key; };
  if (!std::is_sorted(pending_.begin(), pending_.end(), by_key)) std::sort(pending_.begin(), pending_.end(), by_key);
  BlockCatalog out;
  size_t text_size = 0;
  for (const Pending& p : pending_) text_size += p.key.size() + p.logical.size();
  out.text_.reserve(text_size);
  out.entries_.reserve(pending_.size());
  for (const Pending& p : pending_) {
    out.entries_.push_back({out.text_.size(), static_cast<uint32_t>(p.key.size()),
                            static_cast<uint32_t>(p.logical.size()), p.file});
    out.text_.append(p.key).append(p.logical);
  }
  pending_.clear();
  out.build_lookup();
  return out;
}

}  // namespace recis_convert
