#include "recis_convert/sources/block_catalog.h"

#include <algorithm>
#include <cstring>

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

std::optional<size_t> BlockCatalog::find_index(std::string_view key) const {
  const std::string_view text(text_);
  auto it = std::lower_bound(entries_.begin(), entries_.end(), key, [&text](const Entry& e, std::string_view k) {
    return text.substr(e.at, e.key_size) < k;
  });
  if (it == entries_.end() || text.substr(it->at, it->key_size) != key) return std::nullopt;
  return static_cast<size_t>(it - entries_.begin());
}

std::optional<BlockCatalog::Block> BlockCatalog::find(std::string_view key) const {
  auto index = find_index(key);
  if (!index) return std::nullopt;
  return (*this)[*index];
}

BlockCatalog BlockCatalog::of_files(const std::vector<bool>& wanted) const {
  BlockCatalog out;
  for (const Entry& e : entries_) {
    if (e.file == kNotIndexed || e.file >= wanted.size() || !wanted[e.file]) continue;
    Entry copy = e;
    copy.at = out.text_.size();
    out.text_.append(text_, e.at, e.key_size + e.logical_size);
    out.entries_.push_back(copy);  // stays sorted: a subsequence of a sorted list
  }
  return out;
}

std::string BlockCatalog::encode() const {
  std::string out;
  out.reserve(16 + entries_.size() * 12 + text_.size());
  ByteWriter w(out);
  w.u64(entries_.size());
  for (const Entry& e : entries_) {
    w.u32(e.key_size);
    w.u32(e.logical_size);
    w.u32(e.file);
  }
  w.u64(text_.size());
  out += text_;
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
  return out;
}

}  // namespace recis_convert
