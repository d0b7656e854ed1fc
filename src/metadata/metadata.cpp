#include "recis_convert/metadata/metadata.h"

#include "recis_convert/metadata/json_text.h"
#include "recis_convert/metadata/key_order.h"

#include <algorithm>
#include <set>
#include <unordered_map>

namespace recis_convert {
namespace {

// First occurrence only, as RecIS's util::string::Replace.
std::string replace_first(const std::string& text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  return at == std::string::npos ? text : text.substr(0, at) + to + text.substr(at + from.size());
}

}  // namespace

namespace {

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

void write_index_json(const std::vector<FileResult>& exported, const std::vector<KeptTensor>& kept, TextOut& sink) {
  std::string& out = sink.text();
  out += "{\"block_index\":{";
  bool first = true;
  for (const KeptTensor& k : kept) {
    if (!k.file->written) continue;
    if (!first) out += ',';
    first = false;
    append_json_string(out, k.tensor->name);
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

void write_tensorkey_json(const std::vector<KeptTensor>& kept, TextOut& sink) {
  std::string& out = sink.text();
  out += '{';
  bool first = true;
  for (const KeptTensor& k : kept) {
    if (!k.file->written || k.logical.empty()) continue;
    open_member(out, first, 1, k.tensor->name);
    append_json_string(out, k.logical);
    sink.entry_done();
  }
  close_object(out, first, 0);  // nothing was flushed if it is empty: "{" is still there
  sink.entry_done();
}

// Names stay raw UTF-8, as RecIS's C++ MergeTorchRankJson writes them; its Python side later \u-escapes them when
// it re-dumps the file. Deliberate (README, "metadata"): both parse alike, and published exports verify byte for byte.
void write_torch_rank_json(const std::vector<KeptTensor>& kept, TextOut& sink) {
  std::string& out = sink.text();
  out += '{';
  bool first = true;
  for (const KeptTensor& k : kept) {
    if (!k.file->written) continue;
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
                               const std::vector<KeptTensor>& kept, TextOut& out) {
  if (name == kIndexFile) {
    write_index_json(exported, kept, out);
  } else if (name == kTensorKeyFile) {
    write_tensorkey_json(kept, out);
  } else {
    write_torch_rank_json(kept, out);
  }
}

std::string make_recis_metadata_file(std::string_view name, const std::vector<FileResult>& exported,
                                     const BlockCatalog& blocks) {
  TextOut out;
  write_recis_metadata_file(name, exported, kept_in_key_order(exported, blocks), out);
  return std::move(out.text());
}

std::string make_index_json(const std::vector<FileResult>& exported) {
  return make_recis_metadata_file(kIndexFile, exported, BlockCatalog());
}

std::string make_tensorkey_json(const std::vector<FileResult>& exported, const BlockCatalog& blocks) {
  return make_recis_metadata_file(kTensorKeyFile, exported, blocks);
}

std::string make_torch_rank_json(const std::vector<FileResult>& exported, const BlockCatalog& blocks) {
  return make_recis_metadata_file(kTorchRankFile, exported, blocks);
}

Result<std::vector<TableSummary>> summarize_tables(const std::vector<KeptTensor>& kept, const std::string& ckpt_dir,
                                                   const EmbeddingDTypes& dtypes) {
  // Hash maps of views (into the catalog and the tensors), not maps of strings: a table has one part per source
  // rank and slice, and a million parts must not cost a string and a tree node each. Sorted once at the end.
  struct Part {
    bool has_id = false;
    uint64_t id_rows = 0;
    std::vector<std::pair<std::string_view, uint64_t>> slot_rows;  // (part key, rows)
  };
  struct Table {
    TableSummary summary;
    std::vector<std::string_view> slots;  // as met; few per table
    std::unordered_map<std::string_view, Part> parts;  // by slice
  };
  std::unordered_map<std::string_view, Table> tables;  // by child
  for (const KeptTensor& k : kept) {  // in key order, so the first bad tensor is the same on every run
    auto key = parse_sparse_key_view(k.logical);
    if (!key) continue;  // a dense key (classify_key: sparse keys are the ones with a valid tensorkey.json name)
    const TensorInfo& t = *k.tensor;
    Table& table = tables[key->child];
    if (table.summary.child.empty()) table.summary.child = std::string(key->child);
    if (std::find(table.slots.begin(), table.slots.end(), key->slot) == table.slots.end()) {
      table.slots.push_back(key->slot);
    }
    Part& part = table.parts[key->slice];
    const uint64_t rows = t.shape.empty() ? 0 : t.shape[0];
    if (key->slot == "id") {
      if (t.shape.size() != 1) {
        return bad_input(ckpt_dir + "/" + k.file->name, "id tensor \"" + t.name + "\" is not one-dimensional");
      }
      part.has_id = true;
      part.id_rows = rows;
      table.summary.rows += rows;
    } else {
      part.slot_rows.emplace_back(t.name, rows);
      if (key->slot == "embedding") {
        table.summary.dim = t.shape.empty() ? 0 : t.shape.back();
        table.summary.dtype = t.dtype_spelling;
        const ServingDType serving = dtypes.of(table.summary.child);
        if (serving != ServingDType::kNone) {
          table.summary.dim = original_dim(serving, table.summary.dim);
          table.summary.quantization = quantization_name(serving);
        }
      }
    }
  }
  std::vector<std::pair<std::string_view, Table*>> by_child;
  for (auto& [child, table] : tables) by_child.emplace_back(child, &table);
  std::sort(by_child.begin(), by_child.end());
  std::vector<TableSummary> out;
  out.reserve(by_child.size());
  for (auto& [child, table] : by_child) {
    std::vector<std::pair<std::string_view, const Part*>> by_slice;  // checked in order: the same error every run
    for (const auto& [slice, part] : table->parts) by_slice.emplace_back(slice, &part);
    std::sort(by_slice.begin(), by_slice.end());
    for (const auto& [slice, part] : by_slice) {
      if (!part->has_id) {
        return bad_input(ckpt_dir, "table \"" + std::string(child) + "\" part " + std::string(slice) +
                                       " has slots but no id tensor");
      }
      for (const auto& [name, rows] : part->slot_rows) {
        if (rows != part->id_rows) {
          return bad_input(ckpt_dir, "tensor \"" + std::string(name) + "\" has " + std::to_string(rows) +
                                         " rows but its id has " + std::to_string(part->id_rows));
        }
      }
    }
    TableSummary& summary = table->summary;
    summary.parts = by_slice.size();
    std::vector<std::string_view> others;  // id, embedding, then the others sorted
    for (const char* first : {"id", "embedding"}) {
      if (std::find(table->slots.begin(), table->slots.end(), first) != table->slots.end()) {
        summary.slots.push_back(first);
      }
    }
    for (std::string_view slot : table->slots) {
      if (slot != "id" && slot != "embedding") others.push_back(slot);
    }
    std::sort(others.begin(), others.end());
    summary.slots.insert(summary.slots.end(), others.begin(), others.end());
    out.push_back(std::move(summary));
  }
  return out;
}

}  // namespace recis_convert
