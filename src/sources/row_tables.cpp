#include "recis_convert/sources/row_tables.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "recis_convert/sources/dcp_columns.h"
#include "recis_convert/sources/hugectr_columns.h"

namespace recis_convert {
namespace {

static_assert(HugectrColumns::kKeys == kRowTableIds && HugectrColumns::kVectors == kRowTableEmbeddings &&
              HugectrColumns::kSlotIds == kRowTableSlotIds);
static_assert(DcpTableColumns::kIds == kRowTableIds && DcpTableColumns::kEmbeddings == kRowTableEmbeddings);

uint64_t element_bytes(DType dtype) { return dtype_bits(dtype) / 8; }

TensorInfo tensor(const std::string& name, const RowLayout& layout, uint64_t rows, uint64_t begin) {
  TensorInfo t;
  t.name = name;
  t.dtype = layout.dtype;
  t.dtype_spelling = layout.dtype_spelling;
  t.shape = layout.tensor_shape(rows);
  t.begin = begin;
  t.end = begin + rows * layout.row_bytes();
  return t;
}

std::string block_key(const std::string& table, const std::string& slot) { return table + "." + slot + "/part_0_1"; }

// The output layout of one table: id, embedding[, slot_id] through the row transforms, back to back after the
// header.
Status lay_out(RowTable& t, const RowTransformChain& transforms) {
  const uint64_t n = t.source.rows();
  const DType embedding = t.source.embedding_dtype();
  struct Candidate {
    const char* slot;
    const char* file;
    RowLayout layout;
  };
  std::vector<Candidate> candidates = {
      {"id", "key", RowLayout::of_tensor(DType::kI64, "I64", {n})},
      {"embedding", "emb_vector", RowLayout::of_tensor(embedding, dtype_spelling(embedding), {n, t.source.dim()})}};
  if (t.source.has_slot_id()) candidates.push_back({"slot_id", "slot_id", RowLayout::of_tensor(DType::kU64, "U64", {n})});
  t.slots.clear();
  t.tensors.clear();
  uint64_t next = 0;
  for (const auto& c : candidates) {
    auto rows = transforms.prepare({t.name, c.slot, block_key(t.name, c.slot), t.source.path()}, c.layout);
    if (!rows) return rows.error();
    if (!rows.value().kept()) continue;
    t.tensors.push_back(tensor(block_key(t.name, c.slot), rows.value().output(), n, next));
    next = t.tensors.back().end;
    t.slots.push_back({c.slot, c.file, c.layout, std::make_shared<const SlotRows>(std::move(rows).value())});
  }
  t.preamble = serialize_recis_header(t.tensors, std::nullopt);
  return Ok{};
}

}  // namespace

size_t row_table_column(const std::string& slot) {
  return slot == "id" ? kRowTableIds : slot == "embedding" ? kRowTableEmbeddings : kRowTableSlotIds;
}

const std::string& RowTableSource::path() const {
  if (auto* h = hugectr()) return h->path;
  return std::get<DcpTableSource>(of).dir;
}

uint64_t RowTableSource::rows() const {
  if (auto* h = hugectr()) return h->rows;
  return std::get<DcpTableSource>(of).weight.shape[0];
}

uint64_t RowTableSource::dim() const {
  if (auto* h = hugectr()) return h->vec_size;
  return std::get<DcpTableSource>(of).weight.shape[1];
}

DType RowTableSource::embedding_dtype() const {
  if (hugectr()) return DType::kF32;
  return std::get<DcpTableSource>(of).weight.dtype;
}

bool RowTableSource::has_slot_id() const {
  const HugectrSparseTable* h = hugectr();
  return h && h->has_slot_id;
}

uint64_t RowTableSource::read_row_bytes() const {
  if (auto* h = hugectr()) return h->row_bytes();
  return dim() * element_bytes(embedding_dtype());  // the ids are the row indices: nothing to read
}

uint64_t RowTableSource::bytes() const {
  const HugectrSparseTable* h = hugectr();
  if (h && h->format == HugectrSparseFormat::kLegacyFile) return h->rows * h->record_bytes;
  return rows() * read_row_bytes();
}

std::unique_ptr<RowReader> RowTableSource::open_rows() const {
  if (auto* h = hugectr()) return std::make_unique<HugectrColumns>(*h);
  const DcpTableSource& dcp = std::get<DcpTableSource>(of);
  return std::make_unique<DcpTableColumns>(dcp.dir, dcp.weight);
}

std::vector<std::string> RowTableSource::files() const {
  if (const HugectrSparseTable* h = hugectr()) {
    if (h->format == HugectrSparseFormat::kLegacyFile) return {h->path};
    std::vector<std::string> out = {h->path + "/key", h->path + "/emb_vector"};
    if (h->has_slot_id) out.push_back(h->path + "/slot_id");
    return out;
  }
  const DcpTableSource& dcp = std::get<DcpTableSource>(of);
  std::set<std::string> names;
  for (const DcpChunk& c : dcp.weight.chunks) {
    if (c.numel() > 0) names.insert(dcp.dir + "/" + c.file);
  }
  return std::vector<std::string>(names.begin(), names.end());
}

Status stamp_row_table_inputs(RowTables& model) {
  for (const RowTable& t : model.tables) {
    for (const std::string& path : t.source.files()) {
      if (model.inputs.count(path)) continue;
      auto stamp = regular_file_stamp(path);
      if (!stamp) return bad_input(path, "cannot be read as a regular file");
      model.inputs.emplace(path, *stamp);
    }
  }
  return Ok{};
}

Status check_row_table_inputs(const RowTables& model) {
  for (const auto& [path, before] : model.inputs) {
    auto now = regular_file_stamp(path);
    if (!now) return bad_input(path, "file changed as we read it: it is gone");
    auto unchanged = check_unchanged(before, *now, path);
    if (!unchanged) return unchanged;
  }
  return Ok{};
}

uint64_t RowTable::file_bytes() const { return preamble.size() + (tensors.empty() ? 0 : tensors.back().end); }

std::string row_table_file_name(size_t i, size_t n) {
  char file[64];
  std::snprintf(file, sizeof file, "model-%06zu-of-%06zu.safetensors", i, n);
  return file;
}

CheckpointListing row_tables_listing(const RowTables& model) {
  CheckpointListing listing;
  listing.source = model.source_path;
  const size_t slash = model.source_path.find_last_of('/');
  listing.ckpt_dir = slash == std::string::npos ? "." : model.source_path.substr(0, slash);
  listing.ckpt_id = model.ckpt_id;
  std::vector<std::string> logical;  // alive until the catalog is built
  for (const auto& t : model.tables) {
    for (size_t i = 0; i < t.tensors.size(); ++i) logical.push_back(t.name + "@" + t.slots[i].slot + "^" + kRowTableSlice);
  }
  std::vector<const RowTable*> by_file;
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

Status lay_out_row_tables(RowTables& model, const RowTransformChain& transforms) {
  for (auto& t : model.tables) {
    auto laid_out = lay_out(t, transforms);
    if (!laid_out) return laid_out.error();
  }
  return Ok{};
}

void resize_row_table(RowTable& t, uint64_t rows) {
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

}  // namespace recis_convert
