#include "recis_convert/sources/hugectr_export.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "recis_convert/common/checksum.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/hugectr_graph.h"
#include "recis_convert/common/interrupt.h"
#include "recis_convert/publish/staging.h"
#include "recis_convert/formats/strict_json.h"

namespace recis_convert {
namespace {

using json = nlohmann::json;

TensorInfo tensor(const std::string& name, DType dtype, const char* spelling, std::vector<uint64_t> shape,
                  uint64_t begin, uint64_t bytes) {
  TensorInfo t;
  t.name = name;
  t.dtype = dtype;
  t.dtype_spelling = spelling;
  t.shape = std::move(shape);
  t.begin = begin;
  t.end = begin + bytes;
  return t;
}

std::string block_key(const std::string& table, const char* slot) { return table + "." + slot + "/part_0_1"; }

// The output layout of one table: id, embedding[, slot_id] through the row transforms, back to back after the
// header.
Status lay_out(HugectrTableExport& t, const RowTransformChain& transforms) {
  const uint64_t n = t.source.rows;
  struct Candidate {
    const char* slot;
    const char* file;
    RowLayout layout;
  };
  std::vector<Candidate> candidates = {{"id", "key", RowLayout::of_tensor(DType::kI64, "I64", {n})},
                                       {"embedding", "emb_vector",
                                        RowLayout::of_tensor(DType::kF32, "F32", {n, t.source.vec_size})}};
  if (t.source.has_slot_id) candidates.push_back({"slot_id", "slot_id", RowLayout::of_tensor(DType::kU64, "U64", {n})});
  t.slots.clear();
  t.tensors.clear();
  uint64_t next = 0;
  for (const auto& c : candidates) {
    auto rows = transforms.prepare({t.name, c.slot, block_key(t.name, c.slot), t.source.path}, c.layout);
    if (!rows) return rows.error();
    if (!rows.value().kept()) continue;
    const RowLayout out = rows.value().output();
    t.slots.push_back({c.slot, c.file, c.layout, std::make_shared<const SlotRows>(std::move(rows).value())});
    t.tensors.push_back(tensor(block_key(t.name, c.slot), out.dtype, out.dtype_spelling.c_str(), out.tensor_shape(n),
                               next, n * out.row_bytes()));
    next = t.tensors.back().end;
  }
  t.preamble = serialize_recis_header(t.tensors, std::nullopt);
  return Ok{};
}

}  // namespace

uint64_t HugectrTableExport::file_bytes() const { return preamble.size() + (tensors.empty() ? 0 : tensors.back().end); }

uint64_t HugectrTableExport::source_bytes() const {
  const uint64_t n = source.rows;
  return n * (source.format == HugectrSparseFormat::kLegacyFile ? source.record_bytes : source.row_bytes());
}

Result<HugectrModel> describe_hugectr_model(const JobOptions& o, const RowTransformChain& transforms) {
  auto text = read_small_file(o.graph, 64u << 20);
  if (!text) return text.error();
  auto graph = parse_hugectr_graph(text.value(), o.graph);
  if (!graph) return graph.error();
  const HugectrGraph& g = graph.value();
  if (o.sparse.size() != g.embeddings.size()) {
    return usage_error(o.graph + " has " + std::to_string(g.embeddings.size()) + " embedding(s) but " +
                       std::to_string(o.sparse.size()) + " --sparse model(s) were given (one per embedding, in "
                       "graph order)");
  }
  if (!o.table_names.empty() && o.table_names.size() != g.embeddings.size()) {
    return usage_error("--table-names names " + std::to_string(o.table_names.size()) + " tables, the graph has " +
                       std::to_string(g.embeddings.size()));
  }
  if (!o.hugectr_dense.empty()) {
    struct stat st {};
    if (::stat(o.hugectr_dense.c_str(), &st) != 0) {
      return bad_input(o.hugectr_dense, std::string("cannot read: ") + std::strerror(errno));
    }
    auto sized = check_dense_file_size(g, static_cast<uint64_t>(st.st_size), o.hugectr_dense);
    if (!sized) return sized.error();
  }
  HugectrModel model;
  model.graph_path = o.graph;
  std::set<std::string> names;
  for (size_t i = 0; i < g.embeddings.size(); ++i) {
    const HugectrEmbedding& e = g.embeddings[i];
    HugectrTableExport t;
    t.name = o.table_names.empty() ? e.top : o.table_names[i];
    if (t.name.empty() || t.name.find_first_of("/@^.") != std::string::npos || !names.insert(t.name).second) {
      return usage_error("table name \"" + t.name + "\" is empty, repeated, or holds one of / @ ^ .");
    }
    auto source = describe_hugectr_sparse(o.sparse[i], e.vec_size, HugectrLegacyLayout{g.legacy_key_bytes, e.localized});
    if (!source) return source.error();
    t.source = source.value();
    if (e.localized && !t.source.has_slot_id) {
      return bad_input(o.sparse[i], "has no slot_id file, but " + e.top + " is a localized embedding");
    }
    char file[64];
    std::snprintf(file, sizeof file, "model-%06zu-of-%06zu.safetensors", i, g.embeddings.size());
    t.file = file;
    auto laid_out = lay_out(t, transforms);
    if (!laid_out) return laid_out.error();
    model.tables.push_back(std::move(t));
  }
  return model;
}

CheckpointListing hugectr_listing(const HugectrModel& model) {
  CheckpointListing listing;
  listing.source = model.graph_path;
  const size_t slash = model.graph_path.find_last_of('/');
  listing.ckpt_dir = slash == std::string::npos ? "." : model.graph_path.substr(0, slash);
  listing.ckpt_id = "hugectr";
  std::vector<std::string> logical;  // alive until the catalog is built
  for (const auto& t : model.tables) {
    for (size_t i = 0; i < t.tensors.size(); ++i) logical.push_back(t.name + "@" + t.slots[i].slot + "^" + kHugectrSlice);
  }
  std::vector<const HugectrTableExport*> by_file;
  for (const auto& t : model.tables) by_file.push_back(&t);
  std::sort(by_file.begin(), by_file.end(), [](auto* a, auto* b) { return a->file < b->file; });
  for (const auto* t : by_file) listing.files.push_back({t->file, t->file_bytes()});
  BlockCatalog::Builder blocks;
  size_t next = 0;
  for (const auto& t : model.tables) {
    for (size_t i = 0; i < t.tensors.size(); ++i) blocks.add(t.tensors[i].name, listing.file_number(t.file), logical[next++]);
  }
  listing.blocks = std::move(blocks).finish();
  return listing;
}

Status lay_out_hugectr_tables(HugectrModel& model, const RowTransformChain& transforms) {
  for (auto& t : model.tables) {
    auto laid_out = lay_out(t, transforms);
    if (!laid_out) return laid_out.error();
  }
  return Ok{};
}

void resize_hugectr_table(HugectrTableExport& t, uint64_t rows) {
  uint64_t next = 0;
  for (size_t k = 0; k < t.slots.size(); ++k) {
    const RowLayout& out = t.slots[k].rows->output();
    t.tensors[k].shape = out.tensor_shape(rows);
    t.tensors[k].begin = next;
    t.tensors[k].end = next + rows * out.row_bytes();
    next = t.tensors[k].end;
  }
  t.preamble = serialize_recis_header(t.tensors, std::nullopt);
}

Status unpack_legacy_table(const HugectrSparseTable& table, const std::string& dir, size_t buffer_bytes) {
  if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST) {
    return output_error(dir, std::string("cannot create: ") + std::strerror(errno));
  }
  std::vector<std::unique_ptr<FileDescriptor>> files;
  std::vector<std::string> names = {dir + "/key", dir + "/emb_vector"};
  if (table.has_slot_id) names.push_back(dir + "/slot_id");
  for (const auto& name : names) {
    files.push_back(std::make_unique<FileDescriptor>(::open(name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)));
    if (files.back()->get() < 0) return output_error(name, std::string("cannot create: ") + std::strerror(errno));
  }
  HugectrRowReader reader(table);
  HugectrRows rows;
  const uint64_t piece = std::max<uint64_t>(1, buffer_bytes / std::max<uint64_t>(table.record_bytes, 1));
  for (uint64_t first = 0; first < table.rows; first += piece) {
    const uint64_t n = std::min(piece, table.rows - first);
    auto read = reader.read(first, n, rows);
    if (!read) return read;
    auto keys = write_all(files[0]->get(), rows.keys.data(), n * 8, names[0]);
    if (!keys) return keys;
    auto vectors = write_all(files[1]->get(), rows.vectors.data(), n * table.vec_size * 4, names[1]);
    if (!vectors) return vectors;
    if (table.has_slot_id) {
      auto slots = write_all(files[2]->get(), rows.slot_ids.data(), n * 8, names[2]);
      if (!slots) return slots;
    }
    if (auto stop = interruption()) return *stop;
  }
  return Ok{};
}

namespace {
// Legacy tables unpacked for --format hdf5 live in the staging directory under this prefix until publish.
constexpr const char* kUnpackedPrefix = ".hugectr-unpacked-";

std::string hugectr_table_dir(const HugectrTableExport& t, const std::string& staging_dir) {
  // a legacy table's interleaved records are unpacked into plain arrays
  return t.source.format == HugectrSparseFormat::kLegacyFile ? staging_dir + "/" + kUnpackedPrefix + t.name
                                                             : resolved_path(t.source.path);
}

}  // namespace

std::string hugectr_slot_path(const HugectrTableExport& t, const HugectrSlotExport& slot,
                              const std::string& staging_dir) {
  return hugectr_table_dir(t, staging_dir) + "/" + slot.source_file;
}

Result<HugectrShare> hugectr_share(const HugectrModel& model, const std::vector<size_t>& mine, int rank,
                                   const std::string& staging_dir, bool dry_run, size_t buffer_bytes) {
  HugectrShare share;
  for (size_t i : mine) {
    const HugectrTableExport& t = model.tables[i];
    const std::string dir = hugectr_table_dir(t, staging_dir);
    if (t.source.format == HugectrSparseFormat::kLegacyFile && !dry_run) {
      auto unpacked = unpack_legacy_table(t.source, dir, buffer_bytes);
      if (!unpacked) return unpacked.error();
    }
    // The key, emb_vector and slot_id files of the directory format are plain arrays: each is a source tensor at
    // offset 0, with the rows as read (the HDF5 layout applies the row transforms).
    for (const HugectrSlotExport& slot : t.slots) {
      SourceTensor src;
      src.key = block_key(t.name, slot.slot.c_str());
      src.sparse = true;
      src.child = t.name;
      src.slot = slot.slot;
      src.slice = kHugectrSlice;
      src.dtype = slot.source.dtype_spelling;
      src.shape = slot.source.tensor_shape(t.source.rows);
      src.file = hugectr_slot_path(t, slot, staging_dir);  // absolute: the tables may live anywhere
      src.owner = rank;
      share.tensors.push_back(std::move(src));
    }
    FileResult result;
    result.name = t.file;
    result.source_bytes = t.source_bytes();
    result.kept = t.tensors;
    share.results.push_back(std::move(result));
  }
  return share;
}

void remove_unpacked_tables(const HugectrModel& model, const std::string& staging_dir) {
  for (const auto& t : model.tables) {
    if (t.source.format == HugectrSparseFormat::kLegacyFile) remove_tree(staging_dir + "/" + kUnpackedPrefix + t.name);
  }
}

}  // namespace recis_convert
