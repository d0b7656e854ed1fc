#include "recis_convert/plan/reshard_plan.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <tuple>
#include <unordered_map>

#include "recis_convert/plan/slices.h"

namespace recis_convert {
namespace {

// Source parts in slice order: "part_r_R" by the first id residue of gen_slice(r, R). A suffix that is not of
// that form (RecIS writes no other) sorts after, by name.
std::tuple<int, uint32_t, std::string> slice_order(const PartId& part) {
  unsigned r = 0, count = 0;
  char tail = 0;
  if (std::sscanf(part.part.c_str(), "part_%u_%u%c", &r, &count, &tail) == 2 && count >= 1 && count <= kSliceSize &&
      r < count) {
    return {0, gen_slice(r, count).begin, part.part};
  }
  return {1, 0, part.part};
}

std::string layout_text(const RowLayout& l) {
  std::string shape;
  for (uint64_t d : l.row_shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
  return l.dtype_spelling + " [N" + (shape.empty() ? "" : ", " + shape) + "]";
}

bool same_layout(const RowLayout& a, const RowLayout& b) {
  return a.dtype_spelling == b.dtype_spelling && a.row_shape == b.row_shape && a.encoding == b.encoding;
}

std::string output_key(const std::string& table, const std::string& slot, uint32_t m, uint32_t count) {
  return table + "." + slot + "/part_" + std::to_string(m) + "_" + std::to_string(count);
}

struct TablePlan {
  std::map<std::string, RowLayout> slots;  // by slot name
  std::vector<const PartTargets*> parts;   // in slice order
};

}  // namespace

std::string reshard_file_name(uint32_t index, uint32_t count) {
  char name[64];
  std::snprintf(name, sizeof name, "model-%06u-of-%06u.safetensors", index, count);
  return name;
}

Result<ReshardLayout> plan_reshard(const ReshardInput& input, const std::map<PartId, uint64_t>& kept_rows,
                                   const std::string& ckpt_dir) {
  const uint32_t M = input.count;
  std::map<std::string, TablePlan> tables;
  std::map<PartId, const PartTargets*> part_of;
  for (const PartTargets& p : input.parts) {
    part_of.emplace(p.part, &p);
    tables[p.part.table].parts.push_back(&p);
  }
  std::map<PartId, std::set<std::string>> slots_of;
  for (const KeptSlot& s : input.slots) {
    auto part = part_of.find(s.part);
    if (part == part_of.end()) {
      return bad_input(s.file, "tensor " + quoted_name(s.tensor) + " has no id tensor in its part " + s.part.part);
    }
    const DecisionColumn& ids = part->second->ids;
    if (s.rows != ids.rows) {
      return bad_input(s.file, "tensor " + quoted_name(s.tensor) + " has " + std::to_string(s.rows) + " rows but its part's " +
                                   quoted_name(ids.tensor) + " has " + std::to_string(ids.rows));
    }
    auto [slot, added] = tables[s.part.table].slots.emplace(s.slot, s.output);
    if (!added && !same_layout(slot->second, s.output)) {
      return bad_input(s.file, "tensor " + quoted_name(s.tensor) + " has rows of " + layout_text(s.output) +
                                   ", but another part of table " + quoted_name(s.part.table) + " has " +
                                   layout_text(slot->second));
    }
    slots_of[s.part].insert(s.slot);
  }
  for (auto& [name, table] : tables) {
    for (const PartTargets* p : table.parts) {
      for (const auto& [slot, layout] : table.slots) {
        if (!slots_of[p->part].count(slot)) {
          return bad_input(ckpt_dir, "table " + quoted_name(name) + " part " + p->part.part + " has no " + slot +
                                         " tensor, which its other parts have");
        }
      }
      auto kept = kept_rows.find(p->part);
      const uint64_t expected = kept == kept_rows.end() ? p->ids.rows : kept->second;
      uint64_t routed = 0;
      for (const TargetRows& t : p->targets) {
        if (t.target >= M) return bad_input(p->ids.path, "internal: a row of " + quoted_name(p->ids.tensor) + " went to part " +
                                                               std::to_string(t.target) + " of " + std::to_string(M));
        routed += t.rows;
      }
      if (routed != expected) {
        return bad_input(p->ids.path, "tensor " + quoted_name(p->ids.tensor) + " routed " + std::to_string(routed) +
                                          " rows, but its part keeps " + std::to_string(expected));
      }
    }
    std::sort(table.parts.begin(), table.parts.end(), [](const PartTargets* a, const PartTargets* b) {
      return slice_order(a->part) < slice_order(b->part);
    });
  }

  // Rows per (table, target), and each source part's first row within each target (source parts in slice order).
  std::map<std::string, std::vector<uint64_t>> rows_of;  // table -> rows per target
  std::map<PartId, std::map<uint32_t, uint64_t>> first_row;
  for (const auto& [name, table] : tables) {
    std::vector<uint64_t>& rows = rows_of[name];
    rows.assign(M, 0);
    for (const PartTargets* p : table.parts) {
      for (const TargetRows& t : p->targets) {
        first_row[p->part][t.target] = rows[t.target];
        rows[t.target] += t.rows;
      }
    }
  }

  ReshardLayout layout;
  layout.count = M;
  layout.rows = rows_of;
  layout.files.resize(M);
  std::vector<std::unordered_map<std::string, uint64_t>> begin_of(M);  // per file: output key -> data offset
  for (uint32_t m = 0; m < M; ++m) {
    ReshardFile& file = layout.files[m];
    file.name = reshard_file_name(m, M);
    const std::string slice = slice_string(gen_slice(m, M));
    for (const auto& [name, table] : tables) {
      for (const auto& [slot, row] : table.slots) {
        TensorInfo t;
        t.name = output_key(name, slot, m, M);
        t.dtype = row.dtype;
        t.dtype_spelling = row.dtype_spelling;
        t.shape = row.tensor_shape(rows_of[name][m]);
        t.end = rows_of[name][m] * row.row_bytes();  // a length until the offsets are laid out below
        layout.logical[t.name] = name + "@" + slot + "^" + slice;
        file.tensors.push_back(std::move(t));
      }
    }
    if (m == 0) {
      for (const KeptDense& d : input.dense) {
        TensorInfo t = d.tensor;
        t.begin = 0;
        t.end = d.tensor.nbytes();
        file.tensors.push_back(std::move(t));
      }
    }
    std::sort(file.tensors.begin(), file.tensors.end(),
              [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
    uint64_t next = 0;
    for (TensorInfo& t : file.tensors) {
      const uint64_t length = t.end;
      t.begin = next;
      t.end = next + length;
      next = t.end;
      begin_of[m].emplace(t.name, t.begin);
    }
    file.preamble = serialize_recis_header(file.tensors, std::nullopt);
  }

  for (const KeptSlot& s : input.slots) {
    const PartTargets& p = *part_of.at(s.part);
    TensorPlacement placed{s.tensor, p.ids, {}};
    const uint64_t row_bytes = s.output.row_bytes();
    for (const TargetRows& t : p.targets) {
      const uint64_t begin = begin_of[t.target].at(output_key(s.part.table, s.slot, t.target, M));
      const uint64_t row = first_row[s.part][t.target];
      placed.targets.push_back(
          Placement{t.target, layout.files[t.target].preamble.size() + begin + row * row_bytes, row, t.rows});
    }
    layout.sparse.emplace(s.tensor, std::move(placed));
  }
  for (const KeptDense& d : input.dense) {
    layout.dense.emplace(d.tensor.name, layout.files[0].preamble.size() + begin_of[0].at(d.tensor.name));
  }
  return layout;
}

BlockCatalog reshard_catalog(const ReshardLayout& layout) {
  BlockCatalog::Builder builder;
  for (uint32_t m = 0; m < layout.files.size(); ++m) {
    for (const TensorInfo& t : layout.files[m].tensors) {
      auto logical = layout.logical.find(t.name);
      builder.add(t.name, m, logical == layout.logical.end() ? std::string_view() : std::string_view(logical->second));
    }
  }
  return std::move(builder).finish();
}

}  // namespace recis_convert
