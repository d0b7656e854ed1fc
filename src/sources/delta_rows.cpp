#include "recis_convert/sources/delta_rows.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "recis_convert/common/file_io.h"

namespace recis_convert {
namespace {

constexpr uint64_t kIdChunk = 131072;  // ids read at a time (1 MiB)

}  // namespace

uint64_t RowColumn::row_bytes() const {
  uint64_t elements = 1;
  for (size_t d = 1; d < tensor.shape.size(); ++d) elements *= tensor.shape[d];
  return elements * dtype_bits(tensor.dtype) / 8;
}

Result<DeltaRows> DeltaRows::read(const std::vector<CheckpointListing>& deltas) {
  DeltaRows out;
  for (const CheckpointListing& delta : deltas) {
    std::map<std::pair<std::string, std::string>, Part> parts;  // (table, part suffix): key order
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
    std::map<std::string, uint64_t> rows;  // per table: at most this many new ids (reserved at once)
    for (const auto& [name, part] : parts) {
      auto id = part.slots.find("id");
      if (id != part.slots.end()) rows[part.table] += id->second.rows();
    }
    for (const auto& [table, n] : rows) {
      auto [named, added] = out.table_index_.emplace(table, static_cast<uint32_t>(out.tables_.size()));
      if (added) out.tables_.emplace_back();
      out.tables_[named->second].rows.reserve(out.tables_[named->second].rows.size() + n);
    }
    for (auto& [name, part] : parts) {
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
      auto [named, added] = out.table_index_.emplace(part.table, static_cast<uint32_t>(out.tables_.size()));
      if (added) out.tables_.emplace_back();
      Table& table = out.tables_[named->second];
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
        for (uint64_t r = 0; r < n; ++r) {
          auto [at, is_new] = table.rows.insert(ids[r], Location{index, first + r});
          if (is_new) {
            table.order.push_back(ids[r]);
          } else {
            *at = Location{index, first + r};  // a later delta's row replaces an earlier one's
          }
        }
      }
      out.parts_.push_back(std::move(part));
    }
  }
  return out;
}

uint64_t DeltaRows::IdTable::hash(int64_t id) {  // murmur3's finalizer: ids are often multiples of a stride
  uint64_t x = static_cast<uint64_t>(id);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  return x ^ (x >> 33);
}

void DeltaRows::IdTable::reserve(size_t ids) {
  locations_.reserve(ids);
  if (slots_.size() < 2 * ids) rehash(2 * ids);
}

void DeltaRows::IdTable::rehash(size_t capacity) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(capacity, Slot{});
  for (const Slot& s : old) {
    if (s.index == 0) continue;
    size_t at = home(s.key);
    while (slots_[at].index != 0) at = next(at);
    slots_[at] = s;
  }
}

std::pair<DeltaRows::Location*, bool> DeltaRows::IdTable::insert(int64_t id, Location at) {
  if ((locations_.size() + 1) * 2 > slots_.size()) rehash(std::max<size_t>(16, slots_.size() * 2));
  size_t i = home(id);
  for (; slots_[i].index != 0; i = next(i)) {
    if (slots_[i].key == id) return {&locations_[slots_[i].index - 1], false};
  }
  locations_.push_back(at);
  slots_[i] = Slot{id, static_cast<uint32_t>(locations_.size())};
  return {&locations_.back(), true};
}

const DeltaRows::Location* DeltaRows::IdTable::find(int64_t id) const {
  if (slots_.empty()) return nullptr;
  for (size_t i = home(id); slots_[i].index != 0; i = next(i)) {
    if (slots_[i].key == id) return &locations_[slots_[i].index - 1];
  }
  return nullptr;
}

std::optional<uint32_t> DeltaRows::table_index(const std::string& table) const {
  auto t = table_index_.find(table);
  if (t == table_index_.end()) return std::nullopt;
  return t->second;
}

const DeltaRows::Location* DeltaRows::find(uint32_t table, int64_t id) const { return tables_[table].rows.find(id); }

const DeltaRows::Location* DeltaRows::find(const std::string& table, int64_t id) const {
  auto t = table_index(table);
  return t ? find(*t, id) : nullptr;
}

const std::vector<int64_t>& DeltaRows::ids_in_order(const std::string& table) const {
  static const std::vector<int64_t> kNone;
  auto t = table_index(table);
  return t ? tables_[*t].order : kNone;
}

const RowColumn* DeltaRows::dense(const std::string& key) const {
  auto d = dense_.find(key);
  return d == dense_.end() ? nullptr : &d->second;
}

uint64_t DeltaRows::id_count() const {
  uint64_t n = 0;
  for (const auto& t : tables_) n += t.order.size();
  return n;
}

}  // namespace recis_convert
