#include "recis_convert/pipeline/row_table_stage.h"

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>

#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/hugectr_sparse.h"
#include "recis_convert/mpi/job_messages.h"
#include "recis_convert/plan/slices.h"
#include "recis_convert/sinks/hdf5_row_tables.h"
#include "recis_convert/sinks/row_table_files.h"
#include "recis_convert/transforms/embedding_codecs.h"
#include "recis_convert/transforms/row_eviction.h"

namespace recis_convert {
namespace {

// The pseudo part of rank r's range (RecIS's "part_r_R" form: plan_reshard orders source parts by it, which for
// contiguous ranges in rank order is the table's row order).
std::string range_part(int rank, int world_size) {
  return "part_" + std::to_string(rank) + "_" + std::to_string(world_size);
}

// Rank 0 with --reshard: the M files, and each rank's placements (ranks[r][table] per slot); each rank's range of
// a table is a source part.
Result<ReshardLayout> plan_resharded(const JobOptions& o, const RowTables& model,
                                     const std::vector<RankRowRangeCounts>& counts,
                                     std::vector<std::vector<RowRangePlacement>>& ranks) {
  const int world_size = static_cast<int>(counts.size());
  std::vector<std::vector<RowTablePart>> parts(counts.size());  // by rank
  std::vector<RowTablePart> all;
  for (int r = 0; r < world_size; ++r) {
    for (const RowRangeCount& c : counts[static_cast<size_t>(r)].ranges) {
      const RowTable& t = model.tables[c.table];
      const std::string part = range_part(r, world_size);
      parts[static_cast<size_t>(r)].push_back(
          RowTablePart{part, DecisionColumn{t.source.path(), t.name + ".id/" + part, 0, c.rows}, c});
      all.push_back(parts[static_cast<size_t>(r)].back());
    }
  }
  auto layout = plan_row_table_reshard(o.reshard, model, all);
  if (!layout) return layout.error();
  ranks.assign(static_cast<size_t>(world_size), {});
  for (size_t r = 0; r < parts.size(); ++r) {
    for (const RowTablePart& p : parts[r]) {
      const RowTable& t = model.tables[p.count.table];
      RowRangePlacement placed{p.count.table, {}};
      for (const auto& slot : t.slots) placed.slots.push_back(layout.value().sparse.at(p.key(t, slot.slot)).targets);
      ranks[r].push_back(std::move(placed));
    }
  }
  return layout;
}

// Rank 0 without --reshard: each table's file sized to its kept rows, each rank's rows after those of lower ranks.
void plan_in_place(RowTables& model, const std::vector<RankRowRangeCounts>& counts,
                   std::vector<std::vector<RowRangePlacement>>& ranks) {
  ranks.assign(counts.size(), {});
  for (uint64_t i = 0; i < model.tables.size(); ++i) {
    RowTable& t = model.tables[i];
    uint64_t total = 0;
    for (const auto& rank : counts) total += rank.ranges[i].kept;
    resize_row_table(t, total);
    uint64_t before = 0;
    for (size_t r = 0; r < counts.size(); ++r) {
      const uint64_t kept = counts[r].ranges[i].kept;
      RowRangePlacement placed{i, {}};
      for (size_t k = 0; k < t.slots.size(); ++k) {
        const uint64_t offset = t.preamble.size() + t.tensors[k].begin + before * t.slots[k].rows->output().row_bytes();
        placed.slots.push_back({Placement{static_cast<uint32_t>(i), offset, before, kept}});
      }
      ranks[r].push_back(std::move(placed));
      before += kept;
    }
  }
}

}  // namespace

Result<ReshardLayout> plan_row_table_reshard(uint32_t count, const RowTables& model,
                                           const std::vector<RowTablePart>& parts) {
  ReshardInput input;
  input.count = count;
  std::map<PartId, uint64_t> kept;
  for (const RowTablePart& p : parts) {
    const RowTable& t = model.tables[p.count.table];
    const PartId part{t.name, p.part};
    input.parts.push_back(PartTargets{part, p.ids, p.count.targets});
    kept[part] = p.count.kept;
    for (const auto& slot : t.slots) {
      input.slots.push_back(KeptSlot{part, slot.slot, p.key(t, slot.slot), p.ids.path, p.count.rows,
                                     slot.rows->output()});
    }
  }
  return plan_reshard(input, kept, model.source_path);
}

RowFilter embedding_norm_filter(DType dtype, uint64_t dim, float below) {
  if (dtype == DType::kF32) {
    return RowFilter{kRowTableEmbeddings, [dim, below](const unsigned char* rows, uint64_t n, unsigned char* keep) {
                       uint64_t kept = 0;
                       for (uint64_t r = 0; r < n; ++r) {
                         keep[r] = kept_by_norm(reinterpret_cast<const float*>(rows) + r * dim, dim, below);
                         kept += keep[r];
                       }
                       return kept;
                     }};
  }
  const uint64_t row_bytes = dim * dtype_bits(dtype) / 8;
  return RowFilter{kRowTableEmbeddings, [dtype, dim, below, row_bytes, row = std::vector<float>(dim)](
                                            const unsigned char* rows, uint64_t n, unsigned char* keep) mutable {
                     uint64_t kept = 0;
                     for (uint64_t r = 0; r < n; ++r) {
                       to_float32(dtype, rows + r * row_bytes, dim, row.data());
                       keep[r] = kept_by_norm(row.data(), dim, below);
                       kept += keep[r];
                     }
                     return kept;
                   }};
}

RankRowRangeCounts count_row_table_rows(const JobOptions& o, const RowTables& model,
                                     const std::vector<std::pair<uint64_t, RowRange>>& ranges) {
  RankRowRangeCounts out;
  std::optional<PartOfIdTable> part_of;
  if (o.reshard) part_of.emplace(o.reshard);
  std::vector<char> buffer(kCountPassBufferBytes);
  RowLoop loop(buffer);
  for (const auto& [i, range] : ranges) {
    if (!o.eviction.l2_below && !o.reshard) {  // every row stays, in its table's own file: nothing to read
      out.ranges.push_back(RowRangeCount{i, range.count, range.count, {}});
      continue;
    }
    const RowTableSource& t = model.tables[i].source;
    std::unique_ptr<RowReader> reader = t.open_rows();
    const RowFilter by_norm = embedding_norm_filter(t.embedding_dtype(), t.dim(), o.eviction.l2_below.value_or(0.0f));
    RowRun run;
    run.first = range.first;
    run.end = range.first + range.count;
    run.filter = o.eviction.l2_below ? &by_norm : nullptr;
    run.id_column = kRowTableIds;  // HugeCTR's key, a DCP table's row index
    run.route = part_of ? &*part_of : nullptr;
    auto counted = loop.count_kept_rows(*reader, run, o.reshard);
    if (!counted) {
      out.error = counted.error();
      return out;
    }
    RowRangeCount count{i, range.count, counted.value().kept, {}};
    for (uint32_t m = 0; m < o.reshard; ++m) {
      if (counted.value().per_target[m]) count.targets.push_back(TargetRows{m, counted.value().per_target[m]});
    }
    out.ranges.push_back(std::move(count));
  }
  return out;
}

Result<RowTablePlan> plan_whole_row_tables(const JobOptions& o, const RowTables& model,
                                           const std::vector<size_t>& mine, const std::string& staging_dir,
                                           Comm& comm) {
  std::vector<std::pair<uint64_t, RowRange>> ranges;
  for (size_t i : mine) ranges.emplace_back(i, RowRange{0, model.tables[i].source.rows()});
  auto everyone = allgather(comm, count_row_table_rows(o, model, ranges), "hugectr-table-counts");
  if (!everyone) return everyone.error();
  if (auto failure = first_error(everyone)) return *failure;  // the same on every rank
  RowTablePlan plan;
  for (const RankRowRangeCounts& rank : everyone.value()) {
    plan.whole_tables.insert(plan.whole_tables.end(), rank.ranges.begin(), rank.ranges.end());
  }
  std::sort(plan.whole_tables.begin(), plan.whole_tables.end(),
            [](const RowRangeCount& a, const RowRangeCount& b) { return a.table < b.table; });
  for (size_t i = 0; i < model.tables.size(); ++i) {  // each table read by one rank: its count at its index
    if (plan.whole_tables.size() != model.tables.size() || plan.whole_tables[i].table != i) {
      return Error{ExitCode::kInternal, model.source_path, "the ranks' table counts do not cover every table once"};
    }
  }
  if (o.eviction.l2_below && comm.is_root()) {
    for (const RowRangeCount& c : plan.whole_tables) {
      plan.tables[model.tables[c.table].name] = TableEviction{c.rows, c.rows - c.kept};
    }
  }
  if (!o.reshard) return plan;
  std::vector<RowTablePart> parts;  // each table one source part, its ids in its key file
  for (const RowRangeCount& c : plan.whole_tables) {
    const RowTable& t = model.tables[c.table];
    auto id = std::find_if(t.slots.begin(), t.slots.end(), [](const RowTableSlot& s) { return s.slot == "id"; });
    if (id == t.slots.end()) return Error{ExitCode::kInternal, t.source.path(), "table " + quoted_name(t.name) + " has no id"};
    RowTablePart part{"part_0_1", DecisionColumn{}, c};
    part.ids = DecisionColumn{row_table_slot_file(t, *id, staging_dir), part.key(t, "id"), 0, c.rows};
    parts.push_back(std::move(part));
  }
  auto layout = plan_row_table_reshard(o.reshard, model, parts);
  if (!layout) return layout.error();
  plan.placements.emplace();
  plan.placements->count = o.reshard;
  plan.placements->sparse = std::move(layout.value().sparse);
  plan.placements->table_rows = std::move(layout.value().rows);
  return plan;
}

Result<RowRangePlacements> place_row_ranges(const JobOptions& o, RowTables& model,
                                            const std::vector<RankRowRangeCounts>& counts) {
  RowRangePlacements out;
  if (!o.reshard) {
    plan_in_place(model, counts, out.ranks);
    return out;
  }
  auto layout = plan_resharded(o, model, counts, out.ranks);
  if (!layout) return layout.error();
  out.layout = std::move(layout).value();
  return out;
}

Result<RowTablePlan> plan_row_table_ranges(const JobOptions& o, RowTables& model, const std::string& staging_dir,
                                         Comm& comm) {
  std::vector<std::pair<uint64_t, RowRange>> ranges;
  for (uint64_t i = 0; i < model.tables.size(); ++i) {
    ranges.emplace_back(i, rows_of_rank(model.tables[i].source.rows(), comm.size(), comm.rank()));
  }
  auto counted = gather_to_root(comm, count_row_table_rows(o, model, ranges), "hugectr-row-counts");
  RowTablePlan plan;
  std::vector<std::vector<RowRangePlacement>> ranks;
  std::optional<Error> failure;
  if (comm.is_root()) {
    failure = first_error(counted);
    if (!failure && o.eviction.l2_below) {
      for (uint64_t i = 0; i < model.tables.size(); ++i) {
        TableEviction& e = plan.tables[model.tables[i].name];
        e.rows = model.tables[i].source.rows();
        for (const auto& rank : counted.value()) e.evicted += rank.ranges[i].rows - rank.ranges[i].kept;
      }
    }
    auto placed = failure ? Result<RowRangePlacements>(*failure) : place_row_ranges(o, model, counted.value());
    if (!placed) {
      failure = placed.error();
    } else {
      ranks = std::move(placed.value().ranks);
      plan.layout = std::move(placed.value().layout);
    }
    if (!failure && !staging_dir.empty()) {
      auto created = plan.layout ? create_reshard_files(*plan.layout, staging_dir, o.resume)
                                 : create_row_table_files(model, staging_dir, o.resume);
      if (!created) failure = created.error();
    }
  }
  auto mine = scatter_plan_from_root(comm, failure, ranks, "hugectr-row-plan");
  if (!mine) return mine.error();
  plan.mine = std::move(mine).value();
  return plan;
}

}  // namespace recis_convert
