// Helpers for unit tests: temporary directories and hand-made safetensors files / RecIS checkpoints.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace recis_convert::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);
bool path_exists(const std::string& path);

// u64 LE length + json + data (no padding added: the caller controls the exact header bytes).
std::string safetensors_bytes(const std::string& header_json, const std::string& data);

struct FakeTensor {
  std::string name;
  std::string dtype;  // "F32", "I64"...
  std::vector<uint64_t> shape;
  std::string data;   // raw bytes, size must match
};

// A RecIS-style file: compact header with dtype/shape/data_offsets, padded with 1..8 spaces, data back to back.
std::string recis_file(const std::vector<FakeTensor>& tensors);

// The bytes of `values` as they lie in memory (little-endian here), e.g. a tensor's data or a raw column.
template <typename T>
std::string raw_bytes(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// `n` bytes of a recognisable pattern starting at `seed`.
std::string pattern(size_t n, unsigned seed);

// `index` and `tensorkey.json` in `dir` for blocks that all lie in one data file, `file`: each block's key and its
// tensorkey.json name ("child@slot^begin@end@65536"), or "" for a dense "name^ " key.
void write_catalog(const std::string& dir, const std::string& file,
                   const std::vector<std::pair<std::string, std::string>>& blocks);

// A small valid checkpoint in `dir`: table "user" (id, embedding, sparse_adamw_exp_avg) in two files plus the
// dense scalar "sparse_adamw_step^ ", with index and tensorkey.json.
void write_small_checkpoint(const std::string& dir);

// A HugeCTR model in `dir`: g.json with one localized table "user" of 3 slots and vector size 2, and its sparse
// model user.model/ (key, emb_vector, slot_id) holding row r as keys[r], vector [r, -r] and slot id r % 3.
// Returns the sparse model's path.
std::string write_localized_hugectr_model(const std::string& dir, const std::vector<int64_t>& keys);

}  // namespace recis_convert::testing
