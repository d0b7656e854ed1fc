#include "recis_convert/metadata/metadata.h"

#include "recis_convert/transforms/quantize.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

namespace recis_convert {
namespace {

using json = nlohmann::json;  // std::map objects: keys sorted bytewise, as RecIS's index_info / save_bundle

// First occurrence only, as RecIS's util::string::Replace.
std::string replace_first(const std::string& text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  return at == std::string::npos ? text : text.substr(0, at) + to + text.substr(at + from.size());
}

}  // namespace

std::string make_index_json(const std::vector<FileResult>& exported) {
  json block_index = json::object();
  json file_index = json::object();
  uint64_t number = 0;
  for (const auto& file : exported) {
    if (!file.written) continue;
    file_index[file.name] = number;
    for (const auto& t : file.kept) block_index[t.name] = number;
    ++number;
  }
  json root = json::object();
  root["block_index"] = std::move(block_index);
  root["file_index"] = std::move(file_index);
  return root.dump();
}

std::string make_tensorkey_json(const std::vector<FileResult>& exported,
                                const std::map<std::string, std::string>& tensorkey) {
  json root = json::object();
  for (const auto& file : exported) {
    if (!file.written) continue;
    for (const auto& t : file.kept) {
      auto it = tensorkey.find(t.name);
      if (it != tensorkey.end()) root[t.name] = it->second;
    }
  }
  return root.dump(4);
}

std::string make_torch_rank_json(const std::vector<FileResult>& exported,
                                 const std::map<std::string, std::string>& tensorkey) {
  json root = json::object();
  for (const auto& file : exported) {
    if (!file.written) continue;
    for (const auto& t : file.kept) {
      const bool sparse = tensorkey.count(t.name) > 0;
      json entry = json::object();
      entry["name"] = t.name;
      entry["dtype"] = dtype_torch_name(t.dtype);
      entry["shape"] = t.shape;
      if (!sparse) {
        entry["dense"] = true;
        entry["dimension"] = 0;
        entry["is_hashmap"] = false;
      } else if (t.name.find(".embedding") != std::string::npos) {
        // RecIS's MergeTorchRankJson test is "contains .embedding", kept as is for RTP compatibility.
        entry["dense"] = false;
        entry["dimension"] = t.shape.empty() ? 0 : t.shape.back();
        entry["hashmap_key"] = replace_first(t.name, ".embedding", ".id");
        entry["hashmap_key_dtype"] = "int64";
        entry["hashmap_value"] = t.name;
        entry["is_hashmap"] = true;
      } else {
        continue;  // ids and other slots are not listed (RecIS d5e7a5c)
      }
      root[t.name] = std::move(entry);
    }
  }
  return root.dump(4);
}

Result<std::vector<TableSummary>> summarize_tables(const std::vector<FileResult>& all_files,
                                                   const std::map<std::string, std::string>& tensorkey,
                                                   const std::string& ckpt_dir, bool int8_rowwise) {
  struct Part {
    bool has_id = false;
    uint64_t id_rows = 0;
    std::vector<std::pair<std::string, uint64_t>> slot_rows;  // (part key, rows)
  };
  std::map<std::string, std::map<std::string, Part>> parts;  // child -> slice -> part
  std::map<std::string, TableSummary> tables;
  std::map<std::string, std::set<std::string>> slots;
  for (const auto& file : all_files) {
    for (const auto& t : file.kept) {
      auto key = classify_key(t.name, tensorkey);
      if (!key || !key->sparse) continue;
      const SparseKey& sk = key->sparse_key;
      Part& part = parts[sk.child][sk.slice];
      TableSummary& table = tables[sk.child];
      table.child = sk.child;
      slots[sk.child].insert(sk.slot);
      const uint64_t rows = t.shape.empty() ? 0 : t.shape[0];
      if (sk.slot == "id") {
        if (t.shape.size() != 1) {
          return bad_input(ckpt_dir + "/" + file.name, "id tensor \"" + t.name + "\" is not one-dimensional");
        }
        part.has_id = true;
        part.id_rows = rows;
        table.rows += rows;
      } else {
        part.slot_rows.emplace_back(t.name, rows);
        if (sk.slot == "embedding") {
          table.dim = t.shape.empty() ? 0 : t.shape.back();
          table.dtype = t.dtype_spelling;
          if (int8_rowwise && t.dtype == DType::kU8 && table.dim >= kInt8RowwiseExtraBytes) {
            table.dim -= kInt8RowwiseExtraBytes;
            table.quantization = "int8_rowwise";
          }
        }
      }
    }
  }
  for (const auto& [child, by_slice] : parts) {
    for (const auto& [slice, part] : by_slice) {
      if (!part.has_id) {
        return bad_input(ckpt_dir, "table \"" + child + "\" part " + slice + " has slots but no id tensor");
      }
      for (const auto& [name, rows] : part.slot_rows) {
        if (rows != part.id_rows) {
          return bad_input(ckpt_dir, "tensor \"" + name + "\" has " + std::to_string(rows) + " rows but its id has " +
                                         std::to_string(part.id_rows));
        }
      }
      tables[child].parts += 1;
    }
  }
  std::vector<TableSummary> out;
  for (auto& [child, table] : tables) {
    for (const char* first : {"id", "embedding"}) {
      if (slots[child].erase(first)) table.slots.push_back(first);
    }
    table.slots.insert(table.slots.end(), slots[child].begin(), slots[child].end());
    out.push_back(std::move(table));
  }
  return out;
}

}  // namespace recis_convert
