#include "recis_convert/sources/delta_rows.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "recis_convert/common/file_io.h"
#include "recis_convert/plan/slices.h"

namespace recis_convert {
namespace {

constexpr uint64_t kIdChunk = 131072;  // ids read at a time (1 MiB)

uint64_t residue(int64_t id) { return static_cast<uint64_t>(id) % kSliceSize; }  // as RecIS's loader reads it

}  // namespace

uint64_t RowColumn::row_bytes() const {
  uint64_t elements = 1;
  for (size_t d = 1; d < tensor.shape.size(); ++d) elements *= tensor.shape[d];
  return elements * dtype_bits(tensor.dtype) / 8;
}

DeltaRows::Residues DeltaRows::residues_of(const CheckpointListing& base, const std::vector<bool>& files) {
  Residues out;
  for (size_t i = 0; i < base.blocks.size(); ++i) {
    const BlockCatalog::Block block = base.blocks[i];
    if (block.file >= files.size() || !files[block.file]) continue;
    auto key = parse_sparse_key_view(block.logical);  // any slot: a part's slots may lie in other files than its id
    if (!key) continue;
    auto slice = parse_slice(key->slice);
    if (!slice) continue;  // the merge refuses the part when it reaches it, naming it
    std::vector<bool>& residues = out[std::string(key->child)];
    residues.resize(kSliceSize);
    for (uint32_t r = slice->begin; r < slice->end && r < kSliceSize; ++r) residues[r] = true;
  }
  return out;
}

Result<DeltaRows> DeltaRows::read(const std::vector<CheckpointListing>& deltas, const Residues* wanted) {
  DeltaRows out;
  uint64_t seen = 0;  // ids read so far, over every delta: each occurrence's place in the order of appearance
  // 1. every delta's headers: its parts in key order, (table, part suffix), and the dense tensors
  std::vector<std::map<std::pair<std::string, std::string>, Part>> parts_of(deltas.size());
  for (size_t d = 0; d < deltas.size(); ++d) {
    const CheckpointListing& delta = deltas[d];
    auto& parts = parts_of[d];
    for (const DataFile& file : delta.files) {
      const std::string path = delta.ckpt_dir + "/" + file.name;
      auto opened = open_input_file(path);
      if (!opened) return opened.error();
      FileDescriptor fd = std::move(opened).value();
      auto header = read_safetensors_header(fd.get(), file.size, path);
      if (!header) return header.error();
      for (const TensorInfo& t : header.value().tensors) {
        auto key = classify_key(t.name, delta.blocks);
        if (!key) return bad_input(path, "tensor " + nlohmann::json(t.name).dump() + " is not indexed in its export");
        RowColumn column{path, t.name, t, header.value().data_start() + t.begin};
        if (!key->sparse) {
          out.dense_[t.name] = std::move(column);  // a later delta's replaces an earlier one's
          continue;
        }
        const std::string suffix = t.name.substr(t.name.rfind('/') + 1);
        Part& part = parts[{key->sparse_key.child, suffix}];
        part.table = key->sparse_key.child;
        part.slots[key->sparse_key.slot] = std::move(column);
      }
    }
  }
  // 2. the ids, each table's entries reserved at once (growing them would hold two copies)
  std::map<std::string, uint64_t> ids_of_table;
  for (const auto& parts : parts_of) {
    for (const auto& [name, part] : parts) {
      auto id = part.slots.find("id");
      if (id != part.slots.end()) ids_of_table[part.table] += id->second.rows();
    }
  }
  for (const auto& [table, n] : ids_of_table) {  // a rank that keeps a share reserves as it goes
    if (!wanted) out.tables_[table].reserve(n);
  }
  for (size_t d = 0; d < deltas.size(); ++d) {
    const CheckpointListing& delta = deltas[d];
    for (auto& [name, part] : parts_of[d]) {
      auto id = part.slots.find("id");
      if (id == part.slots.end()) {
        return bad_input(delta.ckpt_dir, "part " + nlohmann::json(part.table + "/" + name.second).dump() +
                                             " has no id tensor");
      }
      for (const auto& [slot, column] : part.slots) {
        if (column.rows() != id->second.rows()) {
          return bad_input(column.path, "tensor " + nlohmann::json(column.key).dump() + " has " +
                                            std::to_string(column.rows()) + " rows but its part's id has " +
                                            std::to_string(id->second.rows()));
        }
      }
      if (id->second.tensor.dtype != DType::kI64) {
        return bad_input(id->second.path, "id tensor " + nlohmann::json(id->second.key).dump() + " is not int64");
      }
      const uint32_t index = static_cast<uint32_t>(out.parts_.size());
      std::vector<Entry>& table = out.tables_[part.table];
      const std::vector<bool>* keep = nullptr;  // the residues this rank keeps of the table (null: every one)
      static const std::vector<bool> kNone;
      if (wanted) {
        auto found = wanted->find(part.table);
        keep = found == wanted->end() ? &kNone : &found->second;
      }
      std::vector<int64_t> ids;
      auto opened = open_input_file(id->second.path);
      if (!opened) return opened.error();
      FileDescriptor fd = std::move(opened).value();
      for (uint64_t first = 0; first < id->second.rows(); first += kIdChunk) {
        const uint64_t n = std::min(kIdChunk, id->second.rows() - first);
        ids.resize(n);
        auto read = read_exact(fd.get(), id->second.offset + first * 8, n * 8, ids.data(), id->second.path,
                               "tensor " + nlohmann::json(id->second.key).dump());
        if (!read) return read.error();
        for (uint64_t r = 0; r < n; ++r, ++seen) {
          if (keep && (keep->empty() || !(*keep)[residue(ids[r])])) continue;
          table.push_back(Entry{ids[r], Location{index, first + r}, seen});
        }
        out.rows_read_ += n;
      }
      out.parts_.push_back(std::move(part));
    }
  }
  // each id once, with its newest row and its first appearance, sorted by residue then id
  for (auto& [name, entries] : out.tables_) {
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      const uint64_t ra = residue(a.id), rb = residue(b.id);
      return ra != rb ? ra < rb : a.id != b.id ? a.id < b.id : a.first < b.first;
    });
    size_t kept = 0;
    for (size_t i = 0; i < entries.size();) {
      size_t j = i + 1;
      while (j < entries.size() && entries[j].id == entries[i].id) ++j;
      entries[kept++] = Entry{entries[i].id, entries[j - 1].at, entries[i].first};  // a later delta's row wins
      i = j;
    }
    entries.resize(kept);
  }
  return out;
}

std::pair<const DeltaRows::Entry*, const DeltaRows::Entry*> DeltaRows::in_slice(const std::string& table,
                                                                                 const Slice& slice) const {
  auto t = tables_.find(table);
  if (t == tables_.end()) return {nullptr, nullptr};
  const std::vector<Entry>& entries = t->second;
  auto by_residue = [](const Entry& e, uint64_t r) { return residue(e.id) < r; };
  const Entry* first = entries.data();
  const Entry* last = first + entries.size();
  return {std::lower_bound(first, last, uint64_t{slice.begin}, by_residue),
          std::lower_bound(first, last, uint64_t{slice.end}, by_residue)};
}

const DeltaRows::Entry* DeltaRows::find(const std::string& table, int64_t id) const {
  const uint32_t r = static_cast<uint32_t>(residue(id));
  auto [begin, end] = in_slice(table, Slice{r, r + 1});
  auto at = std::lower_bound(begin, end, id, [](const Entry& e, int64_t v) { return e.id < v; });
  return at != end && at->id == id ? at : nullptr;
}

std::vector<int64_t> DeltaRows::ids_in_order(const std::string& table) const {
  auto t = tables_.find(table);
  if (t == tables_.end()) return {};
  std::vector<Entry> entries = t->second;
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.first < b.first; });
  std::vector<int64_t> ids;
  for (const Entry& e : entries) ids.push_back(e.id);
  return ids;
}

const RowColumn* DeltaRows::dense(const std::string& key) const {
  auto d = dense_.find(key);
  return d == dense_.end() ? nullptr : &d->second;
}

uint64_t DeltaRows::id_count() const {
  uint64_t n = 0;
  for (const auto& [name, entries] : tables_) n += entries.size();
  return n;
}

}  // namespace recis_convert
