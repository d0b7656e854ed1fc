#include "recis_convert/sources/delta_rows.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "recis_convert/common/file_io.h"
#include "recis_convert/plan/slices.h"
#include "recis_convert/sources/id_index.h"

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

Result<DeltaRows> DeltaRows::read(const std::vector<CheckpointListing>& deltas) {
  DeltaRows out;
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
        if (key->sparse_key.slot == "id") {
          auto slice = parse_slice(key->sparse_key.slice);
          if (!slice) {
            return bad_input(path, "id tensor " + nlohmann::json(t.name).dump() + " has no slice RecIS writes");
          }
          part.slice = *slice;
        }
        part.slots[key->sparse_key.slot] = std::move(column);
      }
    }
  }
  // 2. each part checked; its ids are read when a base part asks for them (in_slice)
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
      out.parts_.push_back(std::move(part));
    }
  }
  return out;
}

namespace {

bool meets(const DeltaRows::Part& part, const std::string& table, const Slice& slice) {
  return part.table == table && part.slice.begin < slice.end && slice.begin < part.slice.end;
}

}  // namespace

uint64_t DeltaRows::rows_meeting(const std::string& table, const Slice& slice) const {
  uint64_t rows = 0;
  for (const Part& part : parts_) {
    if (meets(part, table, slice)) rows += part.slots.at("id").rows();
  }
  return rows;
}

Status DeltaRows::for_each_in_slice(const std::string& table, const Slice& slice, const IdVisitor& visit) const {
  std::vector<int64_t> ids;
  for (uint32_t p = 0; p < parts_.size(); ++p) {  // in the order of appearance
    const Part& part = parts_[p];
    if (!meets(part, table, slice)) continue;
    const RowColumn& column = part.slots.at("id");
    auto opened = open_input_file(column.path);
    if (!opened) return opened.error();
    for (uint64_t first = 0; first < column.rows(); first += kIdChunk) {
      const uint64_t n = std::min(kIdChunk, column.rows() - first);
      ids.resize(n);
      auto read = read_exact(opened.value().get(), column.offset + first * 8, n * 8, ids.data(), column.path,
                             "tensor " + nlohmann::json(column.key).dump());
      if (!read) return read.error();
      for (uint64_t r = 0; r < n; ++r) {
        const uint64_t at = residue(ids[r]);
        if (at < part.slice.begin || at >= part.slice.end) {  // it would be missed by the base part that owns it
          return bad_input(column.path, "tensor " + nlohmann::json(column.key).dump() + " row " +
                                            std::to_string(first + r) + ": id " + std::to_string(ids[r]) +
                                            " lies outside its part's slice");
        }
        if (at < slice.begin || at >= slice.end) continue;
        auto visited = visit(ids[r], Location{p, first + r});
        if (!visited) return visited;
      }
    }
  }
  return Ok{};
}

Result<std::vector<DeltaRows::Entry>> DeltaRows::in_slice(const std::string& table, const Slice& slice) const {
  std::vector<Entry> out;
  auto read = for_each_in_slice(table, slice, [&out](int64_t id, const Location& at) {
    out.push_back(Entry{id, at, at});
    return Status(Ok{});
  });
  if (!read) return read.error();
  keep_first_of_each(out);
  return out;
}

void DeltaRows::keep_first_of_each(std::vector<Entry>& out) {
  // the rows come in the order of appearance, so a later one of an id is a later delta's (a hash table, not a
  // sort: a merge asks for every base part's share)
  IdIndex seen(out.size());
  size_t kept = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    const uint32_t at = seen.insert(out[i].id, static_cast<uint32_t>(kept));
    if (at == kept) {
      out[kept++] = out[i];
    } else {
      out[at].at = out[i].at;
    }
  }
  out.resize(kept);
}

Result<std::optional<DeltaRows::Entry>> DeltaRows::find(const std::string& table, int64_t id) const {
  const uint32_t r = static_cast<uint32_t>(residue(id));
  auto entries = in_slice(table, Slice{r, r + 1});
  if (!entries) return entries.error();
  for (const Entry& e : entries.value()) {
    if (e.id == id) return std::optional<Entry>(e);
  }
  return std::optional<Entry>();
}

Result<std::vector<int64_t>> DeltaRows::ids_in_order(const std::string& table) const {
  auto entries = in_slice(table, Slice{});
  if (!entries) return entries.error();
  std::vector<int64_t> ids;
  for (const Entry& e : entries.value()) ids.push_back(e.id);
  return ids;
}

const RowColumn* DeltaRows::dense(const std::string& key) const {
  auto d = dense_.find(key);
  return d == dense_.end() ? nullptr : &d->second;
}

uint64_t DeltaRows::rows() const {
  uint64_t n = 0;
  for (const Part& p : parts_) n += p.slots.at("id").rows();
  return n;
}

}  // namespace recis_convert
