#include "recis_convert/metadata/metadata.h"

#include "recis_convert/metadata/json_text.h"
#include "recis_convert/transforms/quantize.h"

#include <algorithm>
#include <set>

namespace recis_convert {
namespace {

// First occurrence only, as RecIS's util::string::Replace.
std::string replace_first(const std::string& text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  return at == std::string::npos ? text : text.substr(0, at) + to + text.substr(at + from.size());
}

}  // namespace

namespace {

// The kept tensors of the written files, sorted by name (the key order of nlohmann's std::map objects, which
// RecIS's files have), each with the number of its file among the written ones and its tensorkey.json name,
// found by walking the catalog alongside (both are in key order: no lookups).
struct Kept {
  std::string_view name;
  const TensorInfo* tensor;
  const FileResult* file;
  uint64_t file_number;
  std::string_view logical;  // empty: not in tensorkey.json (a dense key)
};
// written_only: the files of a safetensors export; all of them for the tables (--format hdf5 writes none).
std::vector<Kept> kept_by_name(const std::vector<FileResult>& exported, const BlockCatalog* blocks = nullptr,
                               bool written_only = true) {
  std::vector<Kept> out;
  uint64_t number = 0;
  for (const auto& file : exported) {
    if (written_only && !file.written) continue;
    for (const auto& t : file.kept) out.push_back({t.name, &t, &file, number, {}});
    ++number;
  }
  std::stable_sort(out.begin(), out.end(), [](const Kept& a, const Kept& b) { return a.name < b.name; });
  // A name twice would be a key assigned twice in a std::map object, where the last assignment stays. It cannot
  // happen (every block is in one file), but the output must not depend on it.
  std::vector<Kept> unique;
  unique.reserve(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (i + 1 == out.size() || out[i + 1].name != out[i].name) unique.push_back(out[i]);
  }
  if (blocks) {
    size_t b = 0;
    for (Kept& k : unique) {
      while (b < blocks->size() && (*blocks)[b].key < k.name) ++b;
      if (b < blocks->size() && (*blocks)[b].key == k.name) k.logical = (*blocks)[b].logical;
    }
  }
  return unique;
}

// nlohmann's dump(4) layout: an object's members one per line, indented by four spaces per level.
void open_member(std::string& out, bool& first, int depth, std::string_view key) {
  out += first ? "\n" : ",\n";
  first = false;
  out.append(static_cast<size_t>(4 * depth), ' ');
  append_json_string(out, key);
  out += ": ";
}

// Closes an object whose "{" is written: "{}" when it has no member, as nlohmann dumps an empty object.
void close_object(std::string& out, bool empty, int depth) {
  if (empty) {
    out += '}';
    return;
  }
  out += '\n';
  out.append(static_cast<size_t>(4 * depth), ' ');
  out += '}';
}

void append_shape(std::string& out, const std::vector<uint64_t>& shape, int depth) {
  if (shape.empty()) {
    out += "[]";
    return;
  }
  out += "[\n";
  for (size_t i = 0; i < shape.size(); ++i) {
    out.append(static_cast<size_t>(4 * (depth + 1)), ' ');
    out += std::to_string(shape[i]);
    out += i + 1 < shape.size() ? ",\n" : "\n";
  }
  out.append(static_cast<size_t>(4 * depth), ' ');
  out += ']';
}

}  // namespace

void write_index_json(const std::vector<FileResult>& exported, TextOut& sink) {
  std::string& out = sink.text();
  out += "{\"block_index\":{";
  bool first = true;
  for (const Kept& k : kept_by_name(exported)) {
    if (!first) out += ',';
    first = false;
    append_json_string(out, k.name);
    out += ':' + std::to_string(k.file_number);
    sink.entry_done();
  }
  out += "},\"file_index\":{";
  std::vector<std::string_view> names;
  for (const auto& file : exported) {
    if (file.written) names.push_back(file.name);
  }
  std::vector<std::pair<std::string_view, uint64_t>> files;
  for (size_t i = 0; i < names.size(); ++i) files.emplace_back(names[i], i);
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i < files.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, files[i].first);
    out += ':' + std::to_string(files[i].second);
  }
  out += "}}";
  sink.entry_done();
}

void write_tensorkey_json(const std::vector<FileResult>& exported, const BlockCatalog& blocks, TextOut& sink) {
  std::string& out = sink.text();
  out += '{';
  bool first = true;
  for (const Kept& k : kept_by_name(exported, &blocks)) {
    if (k.logical.empty()) continue;
    open_member(out, first, 1, k.name);
    append_json_string(out, k.logical);
    sink.entry_done();
  }
  close_object(out, first, 0);  // nothing was flushed if it is empty: "{" is still there
  sink.entry_done();
}

void write_torch_rank_json(const std::vector<FileResult>& exported, const BlockCatalog& blocks, TextOut& sink) {
  std::string& out = sink.text();
  out += '{';
  bool first = true;
  for (const Kept& k : kept_by_name(exported, &blocks)) {
    const TensorInfo& t = *k.tensor;
    const bool sparse = !k.logical.empty();
    // RecIS's MergeTorchRankJson test is "contains .embedding", kept as is for RTP compatibility; ids and other
    // slots are not listed (RecIS d5e7a5c).
    if (sparse && t.name.find(".embedding") == std::string::npos) continue;
    open_member(out, first, 1, t.name);
    out += '{';
    bool field_first = true;  // the fields in nlohmann's (sorted) key order
    open_member(out, field_first, 2, "dense");
    out += sparse ? "false" : "true";
    open_member(out, field_first, 2, "dimension");
    out += std::to_string(sparse && !t.shape.empty() ? t.shape.back() : 0);
    open_member(out, field_first, 2, "dtype");
    append_json_string(out, dtype_torch_name(t.dtype));
    if (sparse) {
      open_member(out, field_first, 2, "hashmap_key");
      append_json_string(out, replace_first(t.name, ".embedding", ".id"));
      open_member(out, field_first, 2, "hashmap_key_dtype");
      out += "\"int64\"";
      open_member(out, field_first, 2, "hashmap_value");
      append_json_string(out, t.name);
    }
    open_member(out, field_first, 2, "is_hashmap");
    out += sparse ? "true" : "false";
    open_member(out, field_first, 2, "name");
    append_json_string(out, t.name);
    open_member(out, field_first, 2, "shape");
    append_shape(out, t.shape, 2);
    close_object(out, false, 1);
    sink.entry_done();
  }
  close_object(out, first, 0);
  sink.entry_done();
}

void write_recis_metadata_file(std::string_view name, const std::vector<FileResult>& exported,
                               const BlockCatalog& blocks, TextOut& out) {
  if (name == kIndexFile) {
    write_index_json(exported, out);
  } else if (name == kTensorKeyFile) {
    write_tensorkey_json(exported, blocks, out);
  } else {
    write_torch_rank_json(exported, blocks, out);
  }
}

std::string make_index_json(const std::vector<FileResult>& exported) {
  TextOut out;
  write_index_json(exported, out);
  return std::move(out.text());
}

std::string make_tensorkey_json(const std::vector<FileResult>& exported, const BlockCatalog& blocks) {
  TextOut out;
  write_tensorkey_json(exported, blocks, out);
  return std::move(out.text());
}

std::string make_torch_rank_json(const std::vector<FileResult>& exported, const BlockCatalog& blocks) {
  TextOut out;
  write_torch_rank_json(exported, blocks, out);
  return std::move(out.text());
}

Result<std::vector<TableSummary>> summarize_tables(const std::vector<FileResult>& all_files,
                                                   const BlockCatalog& blocks,
                                                   const std::string& ckpt_dir, bool int8_rowwise) {
  struct Part {
    bool has_id = false;
    uint64_t id_rows = 0;
    std::vector<std::pair<std::string, uint64_t>> slot_rows;  // (part key, rows)
  };
  std::map<std::string, std::map<std::string, Part>> parts;  // child -> slice -> part
  std::map<std::string, TableSummary> tables;
  std::map<std::string, std::set<std::string>> slots;
  for (const Kept& k : kept_by_name(all_files, &blocks, false)) {  // in key order
    const TensorInfo& t = *k.tensor;
    const FileResult& file = *k.file;
    {
      auto key = classify_key(t.name, k.logical);
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
