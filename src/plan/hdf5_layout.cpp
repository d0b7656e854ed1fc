#include "recis_convert/plan/hdf5_layout.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "recis_convert/plan/slices.h"

namespace recis_convert {
namespace {

std::vector<uint64_t> parse_slice(const std::string& slice) {
  std::vector<uint64_t> out;
  size_t start = 0;
  while (true) {
    size_t at = slice.find('@', start);
    out.push_back(std::stoull(slice.substr(start, at == std::string::npos ? std::string::npos : at - start)));
    if (at == std::string::npos) break;
    start = at + 1;
  }
  return out;
}

uint64_t product(const std::vector<uint64_t>& dims, size_t from) {
  uint64_t n = 1;
  for (size_t i = from; i < dims.size(); ++i) n *= dims[i];
  return n;
}

// Splits `rows` rows starting at `first_row` into pieces of at most max_piece_bytes (at least one row each). A
// rewritten row needs room for its source and its output at once (both in the one buffer).
void add_pieces(DatasetLayout& dataset, const SourceTensor& t, uint64_t first_row, uint64_t rows, uint64_t max_piece_bytes,
                bool routed = false) {
  uint64_t widest = dataset.rewrite ? dataset.row_bytes + dataset.source_row_bytes
                                    : std::max(dataset.row_bytes, dataset.source_row_bytes);
  if (routed) widest = dataset.source_row_bytes + 2 * dataset.row_bytes;  // read, rewritten, grouped by target
  const uint64_t per_piece = std::max<uint64_t>(1, widest == 0 ? rows : max_piece_bytes / widest);
  for (uint64_t done = 0; done < rows; done += per_piece) {
    WritePiece piece;
    piece.owner = t.owner;
    piece.file = t.file;
    piece.source_offset = t.offset + done * dataset.source_row_bytes;
    piece.tensor_offset = t.offset;
    piece.first_row = first_row + done;
    piece.rows = std::min(per_piece, rows - done);
    piece.selected = !routed && t.kept_rows >= 0;  // a routed piece picks its kept rows itself
    piece.routed = routed;
    piece.tensor = t.key;
    dataset.pieces.push_back(piece);
  }
}

}  // namespace

size_t DatasetLayout::rounds(int world_size) const {
  std::vector<size_t> count(static_cast<size_t>(world_size), 0);
  for (const auto& p : pieces) count[static_cast<size_t>(p.owner)]++;
  return count.empty() ? 0 : *std::max_element(count.begin(), count.end());
}

std::vector<WritePiece> DatasetLayout::pieces_of(int rank) const {
  std::vector<WritePiece> mine;
  for (const auto& p : pieces) {
    if (p.owner == rank) mine.push_back(p);
  }
  return mine;
}

bool is_hdf5_link_name(const std::string& name) {
  return !name.empty() && name != "." && name.find('/') == std::string::npos;
}

Result<Hdf5Layout> lay_out_hdf5(const std::vector<SourceTensor>& tensors, uint64_t max_piece_bytes, const std::string& ckpt_dir,
                           const RowTransformChain& transforms,
                           const std::map<std::string, std::vector<uint64_t>>* target_rows) {
  Hdf5Layout plan;
  // child -> (slice, part rank) -> slot -> tensor
  std::map<std::string, std::map<std::pair<std::string, int>, std::map<std::string, const SourceTensor*>>> tables;
  std::map<std::string, const SourceTensor*> scalars;
  for (const auto& t : tensors) {
    if (t.sparse) {
      tables[t.child][{t.slice, t.part_rank}][t.slot] = &t;
    } else {
      scalars[t.key.substr(0, t.key.size() - 2)] = &t;
    }
  }
  for (const auto& [child, parts] : tables) {
    TableLayout table;
    table.child = child;
    std::set<std::string> slot_names;
    for (const auto& [part, slots] : parts) {
      for (const auto& [slot, t] : slots) slot_names.insert(slot);
    }
    // Each name becomes one HDF5 link ("/sparse/<table>/<slot>"): a '/' would make groups the layout never made.
    for (const std::string& name : slot_names) {
      if (!is_hdf5_link_name(child) || !is_hdf5_link_name(name)) {
        return bad_input(ckpt_dir, "table " + quoted_name(child) + " slot " + quoted_name(name) +
                                       " cannot be stored in HDF5: a name holding '/' or that is \".\" is not one link");
      }
    }
    if (!slot_names.count("id")) return bad_input(ckpt_dir, "table \"" + child + "\" has no id tensor");
    std::vector<std::string> order = {"id"};
    if (slot_names.count("embedding")) order.push_back("embedding");
    for (const auto& s : slot_names) {
      if (s != "id" && s != "embedding") order.push_back(s);
    }
    // Rows per part come from its id; every slot must be present in every part with as many rows.
    for (const auto& [part, slots] : parts) {
      auto id = slots.find("id");
      if (id == slots.end()) return bad_input(ckpt_dir, "table \"" + child + "\" part " + part.first + " has no id");
      PartRow row;
      auto bounds = parse_slice(part.first);
      row.slice_begin = bounds.at(0);
      row.slice_end = bounds.at(1);
      row.slice_size = bounds.at(2);
      row.first_row = table.rows;
      row.rows = id->second->exported_rows();
      for (const auto& name : order) {
        auto it = slots.find(name);
        if (it == slots.end()) {
          return bad_input(ckpt_dir, "table \"" + child + "\" part " + part.first + " has no \"" + name +
                                         "\" although other parts have it");
        }
        if (it->second->shape.empty() || it->second->exported_rows() != row.rows) {
          return bad_input(ckpt_dir, "tensor \"" + it->second->key + "\" does not have the " +
                                         std::to_string(row.rows) + " rows of its id");
        }
      }
      table.parts.push_back(row);
      table.rows += row.rows;
    }
    std::vector<PartRow> source_parts = table.parts;  // where each source part's rows are read from
    std::vector<uint64_t> target_first_row;
    if (target_rows) {  // the M target parts replace the source's
      auto rows = target_rows->find(child);
      if (rows == target_rows->end()) return bad_input(ckpt_dir, "table \"" + child + "\" is not in the reshard plan");
      const uint32_t count = static_cast<uint32_t>(rows->second.size());
      table.parts.clear();
      table.rows = 0;
      for (uint32_t m = 0; m < count; ++m) {
        const Slice slice = gen_slice(m, count);
        table.parts.push_back(PartRow{slice.begin, slice.end, slice.size, table.rows, rows->second[m]});
        target_first_row.push_back(table.rows);
        table.rows += rows->second[m];
      }
    }
    for (const auto& name : order) {
      DatasetLayout dataset;
      dataset.target_first_row = target_first_row;
      dataset.path = "/sparse/" + child + "/" + name;
      const SourceTensor* first = parts.begin()->second.at(name);
      const DType source_dtype = *parse_dtype(first->dtype);
      const std::string file = first->file[0] == '/' ? first->file : ckpt_dir + "/" + first->file;
      auto rows = transforms.prepare({child, name, first->key, file},
                                     RowLayout::of_tensor(source_dtype, first->dtype, first->shape));
      if (!rows) return rows.error();
      if (!rows.value().kept()) continue;  // summarized before filtering (a source that does not filter itself)
      const RowLayout& out = rows.value().output();
      dataset.dtype = out.dtype;
      dataset.dims = out.tensor_shape(table.rows);
      if (dataset.dims.size() > kMaxHdf5Rank) {
        return bad_input(file, "tensor " + quoted_name(first->key) + " has " + std::to_string(dataset.dims.size()) +
                                   " dimensions; an HDF5 dataset has at most " + std::to_string(kMaxHdf5Rank));
      }
      dataset.row_bytes = out.row_bytes();
      dataset.source_row_bytes = product(first->shape, 1) * dtype_bits(source_dtype) / 8;
      if (rows.value().rewritten()) dataset.rewrite = std::make_shared<const SlotRows>(std::move(rows).value());
      size_t p = 0;
      for (const auto& [part, slots] : parts) {
        const SourceTensor* t = slots.at(name);
        if (*parse_dtype(t->dtype) != source_dtype ||
            !std::equal(t->shape.begin() + 1, t->shape.end(), first->shape.begin() + 1, first->shape.end())) {
          return bad_input(ckpt_dir, "tensor \"" + t->key + "\" differs in dtype or row shape from \"" + first->key + "\"");
        }
        if (target_rows) {  // every source row is read and routed
          add_pieces(dataset, *t, 0, t->shape.empty() ? 0 : t->shape[0], max_piece_bytes, true);
        } else {
          add_pieces(dataset, *t, source_parts[p].first_row, source_parts[p].rows, max_piece_bytes);
        }
        ++p;
      }
      if (name == "embedding") table.embedding_dim = first->shape.size() > 1 ? first->shape.back() : 0;
      table.slots.push_back(std::move(dataset));
    }
    plan.tables.push_back(std::move(table));
  }
  for (const auto& [name, t] : scalars) {
    DatasetLayout dataset;
    dataset.path = "/optimizer/" + name;
    dataset.dtype = *parse_dtype(t->dtype);
    dataset.dims = t->shape;
    if (!is_hdf5_link_name(name) || dataset.dims.size() > kMaxHdf5Rank) {
      return bad_input(ckpt_dir, "optimizer scalar " + quoted_name(name) + " cannot be an HDF5 dataset (a name " +
                                     "holding '/', or more than " + std::to_string(kMaxHdf5Rank) + " dimensions)");
    }
    dataset.row_bytes = product(t->shape, 0) * dtype_bits(dataset.dtype) / 8;  // the whole tensor, one piece
    dataset.source_row_bytes = dataset.row_bytes;
    WritePiece piece;
    piece.owner = t->owner;
    piece.file = t->file;
    piece.source_offset = t->offset;
    piece.tensor_offset = t->offset;
    piece.rows = 1;
    piece.tensor = t->key;
    dataset.pieces.push_back(std::move(piece));
    plan.optimizer.push_back(std::move(dataset));
  }
  return plan;
}

namespace {

template <typename Layout, typename Visit>  // Layout: Hdf5Layout, const or not
void for_each_dataset(Layout& plan, Visit&& visit) {
  for (auto& table : plan.tables) {
    for (auto& slot : table.slots) visit(slot);
  }
  for (auto& scalar : plan.optimizer) visit(scalar);
}

}  // namespace

void spread_large_files(Hdf5Layout& plan, const std::set<std::string>& large, int world_size) {
  if (large.empty() || world_size <= 1) return;
  std::vector<uint64_t> load(static_cast<size_t>(world_size), 0);
  auto spreads = [&](const WritePiece& p) { return !p.selected && !p.routed && large.count(p.file) > 0; };
  for_each_dataset(plan, [&](DatasetLayout& d) {  // first what stays where it is
    for (const WritePiece& p : d.pieces) {
      if (!spreads(p)) load[static_cast<size_t>(p.owner)] += p.rows * d.source_row_bytes;
    }
  });
  std::vector<std::pair<WritePiece*, uint64_t>> spread;  // largest first (stable: plan order among equals)
  for_each_dataset(plan, [&](DatasetLayout& d) {
    for (WritePiece& p : d.pieces) {
      if (spreads(p)) spread.emplace_back(&p, p.rows * d.source_row_bytes);
    }
  });
  std::stable_sort(spread.begin(), spread.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (auto& [piece, bytes] : spread) {
    const size_t rank = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    piece->owner = static_cast<int>(rank);
    load[rank] += bytes;
  }
}

PieceBytes bytes_of_rank(const Hdf5Layout& plan, int rank) {
  PieceBytes out;
  for_each_dataset(plan, [&](const DatasetLayout& d) {
    for (const WritePiece& p : d.pieces) {
      if (p.owner != rank) continue;
      out.read += p.rows * d.source_row_bytes;
      out.written += p.rows * d.row_bytes;
    }
  });
  return out;
}

}  // namespace recis_convert
