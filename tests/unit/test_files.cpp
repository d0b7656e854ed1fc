#include "test_files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "recis_convert/publish/staging.h"

namespace recis_convert::testing {

TempDir::TempDir() {
  std::string templ = (std::getenv("TMPDIR") ? std::string(std::getenv("TMPDIR")) : "/tmp") + "/recis-test-XXXXXX";
  if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

TempDir::~TempDir() { remove_tree(path_); }

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string safetensors_bytes(const std::string& header_json, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header_json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header_json + data;
}

std::string recis_file(const std::vector<FakeTensor>& tensors) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  std::string data;
  for (const auto& t : tensors) {
    uint64_t begin = data.size();
    data += t.data;
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
  }
  std::string json = header.dump();
  json.append(8 - json.size() % 8, ' ');
  return safetensors_bytes(json, data);
}

std::string pattern(size_t n, unsigned seed) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>((i * 131 + seed * 7 + (i >> 8)) & 0xff);
  return out;
}

void write_catalog(const std::string& dir, const std::string& file,
                   const std::vector<std::pair<std::string, std::string>>& blocks) {
  nlohmann::json index = {{"block_index", nlohmann::json::object()}, {"file_index", {{file, 0}}}};
  nlohmann::json tensorkey = nlohmann::json::object();
  for (const auto& [key, logical] : blocks) {
    index["block_index"][key] = 0;
    if (!logical.empty()) tensorkey[key] = logical;
  }
  write_file(dir + "/index", index.dump());
  write_file(dir + "/tensorkey.json", tensorkey.dump());
}

void write_small_checkpoint(const std::string& dir) {
  // file 0: user.id (3 rows), the optimizer scalar; file 1: user.embedding [3,2] F32, user.sparse_adamw_exp_avg
  write_file(dir + "/model-000000-of-000002.safetensors",
             recis_file({{"user.id/part_0_1", "I64", {3}, pattern(24, 1)},
                         {"sparse_adamw_step^ ", "I64", {1}, pattern(8, 2)}}));
  write_file(dir + "/model-000001-of-000002.safetensors",
             recis_file({{"user.embedding/part_0_1", "F32", {3, 2}, pattern(24, 3)},
                         {"user.sparse_adamw_exp_avg/part_0_1", "F32", {3, 2}, pattern(24, 4)}}));
  write_file(dir + "/index",
             "{\"block_index\":{\"sparse_adamw_step^ \":0,\"user.embedding/part_0_1\":1,"
             "\"user.id/part_0_1\":0,\"user.sparse_adamw_exp_avg/part_0_1\":1},"
             "\"file_index\":{\"model-000000-of-000002.safetensors\":0,\"model-000001-of-000002.safetensors\":1}}");
  write_file(dir + "/tensorkey.json",
             "{\n    \"user.embedding/part_0_1\": \"user@embedding^00000@65536@65536\",\n"
             "    \"user.id/part_0_1\": \"user@id^00000@65536@65536\",\n"
             "    \"user.sparse_adamw_exp_avg/part_0_1\": \"user@sparse_adamw_exp_avg^00000@65536@65536\"\n}");
}

std::string write_localized_hugectr_model(const std::string& dir, const std::vector<int64_t>& keys) {
  write_file(dir + "/g.json", R"({"layers": [
    {"type": "Data", "dense": {"top": "dense", "dense_dim": 2}, "sparse": [{"top": "d", "slot_num": 3}]},
    {"type": "LocalizedSlotSparseEmbeddingHash", "bottom": "d", "top": "user",
     "sparse_embedding_hparam": {"embedding_vec_size": 2}},
    {"type": "Reshape", "bottom": "user", "top": "r", "leading_dim": 6},
    {"type": "Concat", "bottom": ["r", "dense"], "top": "c"},
    {"type": "InnerProduct", "bottom": "c", "top": "fc", "fc_param": {"num_output": 1}},
    {"type": "BinaryCrossEntropyLoss", "bottom": ["fc", "label"], "top": "loss"}]})");
  const std::string table = dir + "/user.model";
  ::mkdir(table.c_str(), 0777);
  std::vector<float> vectors;
  std::vector<uint64_t> slots;
  for (size_t r = 0; r < keys.size(); ++r) {
    vectors.push_back(static_cast<float>(r));
    vectors.push_back(-static_cast<float>(r));
    slots.push_back(r % 3);
  }
  write_file(table + "/key", raw_bytes(keys));
  write_file(table + "/emb_vector", raw_bytes(vectors));
  write_file(table + "/slot_id", raw_bytes(slots));
  return table;
}

}  // namespace recis_convert::testing
