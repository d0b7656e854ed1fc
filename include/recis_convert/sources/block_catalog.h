// Every block a checkpoint names, as `index` and `tensorkey.json` describe it: its key, the data file the index
// places it in, and for a sparse block its tensorkey.json name. One arena of text and a sorted vector, about
// 24 bytes per block besides the text: a million blocks take ~100 MB, where two maps of strings took over 1 GB.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace recis_convert {

class BlockCatalog {
 public:
  static constexpr uint32_t kNotIndexed = UINT32_MAX;  // in tensorkey.json but not in index

  struct Block {
    std::string_view key;      // "child.slot/part_r_R" or "name^ "
    uint32_t file = kNotIndexed;  // the data file, as an index into CheckpointListing::files
    std::string_view logical;  // tensorkey.json's "child@slot^slice"; empty when not in tensorkey.json
  };

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  size_t sparse_size() const;  // the blocks with a tensorkey.json name
  Block operator[](size_t i) const;
  // The block with this key, or nullopt; find_index gives its position. A hash lookup, not a binary search: with
  // a million blocks a search's cache misses made it the largest cost of deciding a file's tensors.
  std::optional<Block> find(std::string_view key) const;
  std::optional<size_t> find_index(std::string_view key) const;

  // The indexed blocks of the files with wanted[file] (what one rank needs for its share of the files).
  BlockCatalog of_files(const std::vector<bool>& wanted) const;

  // One binary encoding, for the messages between ranks (mpi/job_messages.h). decode: nullopt if malformed.
  // encode_of_files(wanted) is of_files(wanted).encode() without making the share.
  std::string encode() const;
  std::string encode_of_files(const std::vector<bool>& wanted) const;
  static std::optional<BlockCatalog> decode(std::string_view bytes);

  // Blocks are added in any order, each key at most once (the JSON readers reject duplicate keys); finish() sorts.
  class Builder {
   public:
    void add(std::string_view key, uint32_t file, std::string_view logical);
    BlockCatalog finish() &&;

   private:
    struct Pending {
      std::string_view key;
      uint32_t file;
      std::string_view logical;
    };
    std::vector<Pending> pending_;  // views into the caller's text, alive until finish()
  };

 private:
  struct Entry {
    uint64_t at = 0;           // key, then logical, in text_
    uint32_t key_size = 0;
    uint32_t logical_size = 0;
    uint32_t file = kNotIndexed;
  };
  std::string_view key_of(const Entry& e) const { return std::string_view(text_).substr(e.at, e.key_size); }
  bool wanted(const Entry& e, const std::vector<bool>* wanted) const {
    return !wanted || (e.file != kNotIndexed && e.file < wanted->size() && (*wanted)[e.file]);
  }
  std::string encode(const std::vector<bool>* wanted) const;  // nullptr: every block
  void build_lookup();  // after entries_ and text_ are final

  std::string text_;
  std::vector<Entry> entries_;  // sorted by key
  // Open addressing, linear probing, at most half full: each slot is 0 (empty) or the key hash's upper 32 bits
  // and position + 1, so a probe rarely touches a key's text unless it is the one. 8 bytes per slot.
  std::vector<uint64_t> lookup_;
};

}  // namespace recis_convert
