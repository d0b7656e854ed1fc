// A row table's rows (sources/row_tables.h) into files: every rank reads a contiguous range of each table's rows, and
// the ranges in rank order are the table's row order, so the files do not depend on N. Each range counts as one
// source part.
//   1. every rank counts, for each table, the rows of its range that stay (--evict-l2-below: the L2 norm of the
//      embedding, in float32) and, with --reshard, how many of them go to each target part (by id); without
//      either, every row stays and nothing is read;
//   2. rank 0 places them (place_row_ranges, a pure function): with --reshard the M files of plan/reshard_plan.h;
//      without, each table's own file with its kept rows (the kept rows of lower ranks first); it creates the files
//      and sends each rank where its ranges' rows go;
//   3. the stream: every rank reads its ranges, leaves out the evicted rows, rewrites the rest (serving dtypes) and
//      writes them where they were placed (sinks/row_table_files.h: write_row_table_ranges).
// Into model.h5 (plan_whole_row_tables) each table is read whole by one rank, as one source part "part_0_1": every
// rank counts the tables it reads, every rank gets every count (the datasets' sizes), and with --reshard every rank
// plans the same placements; the HDF5 sink writes the kept rows where they say.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/error.h"
#include "recis_convert/mpi/comm.h"
#include "recis_convert/plan/reshard_plan.h"
#include "recis_convert/pipeline/eviction_stage.h"
#include "recis_convert/pipeline/row_loop.h"
#include "recis_convert/formats/hugectr_sparse.h"
#include "recis_convert/sinks/reshard_writer.h"  // ReshardShare
#include "recis_convert/sources/row_tables.h"

namespace recis_convert {

// One rank's range of one table, counted.
struct RowRangeCount {
  uint64_t table = 0;  // index into RowTables::tables
  uint64_t rows = 0;   // the range's rows
  uint64_t kept = 0;
  std::vector<TargetRows> targets;  // with --reshard
};
struct RankRowRangeCounts {
  std::optional<Error> error;
  std::vector<RowRangeCount> ranges;
};

// Where the kept rows of one of this rank's ranges go, per exported slot (RowTable::slots): the
// absolute offset of its first row in each target file, in target order.
struct RowRangePlacement {
  uint64_t table = 0;
  std::vector<std::vector<Placement>> slots;
};

// Rank 0's placement of every rank's ranges (place_row_ranges).
struct RowRangePlacements {
  std::vector<std::vector<RowRangePlacement>> ranks;  // by rank, each in table order
  std::optional<ReshardLayout> layout;                // with --reshard
};

struct RowTablePlan {
  std::vector<RowRangePlacement> mine;      // into files, every rank
  std::optional<ReshardLayout> layout;          // into files, rank 0, with --reshard
  std::map<std::string, TableEviction> tables;  // rank 0, with --evict-l2-below: rows and evicted rows per table
  // Into model.h5, where each table is read whole by one rank (its part "part_0_1"), on every rank: every table's
  // count, in table order, and with --reshard every slot's placements (planned alike on every rank).
  std::vector<RowRangeCount> whole_tables;
  std::optional<ReshardShare> placements;
};

// A source part of a HugeCTR table for --reshard: a range of its rows, counted, named as RecIS names parts
// ("part_r_R": plan_reshard orders a table's parts by it, which must be their row order), with the column of its ids
// (the writer of a routed piece of model.h5 reads them there; the files' writer reads the table itself).
struct RowTablePart {
  std::string part;
  DecisionColumn ids;
  RowRangeCount count;
  // A slot's key: "<table>.<slot>/<part>".
  std::string key(const RowTable& table, const std::string& slot) const {
    return table.name + "." + slot + "/" + part;
  }
};

// The placements of every exported slot of every source part into `count` target parts (plan/reshard_plan.h),
// by RowTablePart::key: --reshard of HugeCTR tables, into files or into model.h5, planned by this one function.
Result<ReshardLayout> plan_row_table_reshard(uint32_t count, const RowTables& model,
                                           const std::vector<RowTablePart>& parts);

// --evict-l2-below on a row table's rows read (its embeddings are read anyway, so the decision is made on them, in
// the count pass and the write alike): a row stays when the L2 norm of its `dim` values of `dtype` (F32, F16,
// BF16: taken as float32 exactly) is at least `below`.
RowFilter embedding_norm_filter(DType dtype, uint64_t dim, float below);

// One rank: the kept rows (and, with --reshard, their targets) of each (table index, row range) given.
RankRowRangeCounts count_row_table_rows(const JobOptions& options, const RowTables& model,
                                     const std::vector<std::pair<uint64_t, RowRange>>& ranges);

// Every rank, collectively (model.h5 exports): each rank counts the tables it reads (`mine`), every rank gets
// every count, and with --reshard plans the placements (the ids of a table are read from `staging_dir` for a legacy
// table, which the stream unpacks there: hugectr_export.h).
Result<RowTablePlan> plan_whole_row_tables(const JobOptions& options, const RowTables& model,
                                           const std::vector<size_t>& mine, const std::string& staging_dir,
                                           Comm& comm);

// Rank 0: where the kept rows of every rank's ranges go, from every rank's counts (by rank, each in table order). With
// --reshard the M part files' layout; without, `model`'s tables resized to their kept rows, each rank's rows after
// those of lower ranks.
Result<RowRangePlacements> place_row_ranges(const JobOptions& options, RowTables& model,
                                            const std::vector<RankRowRangeCounts>& counts);

// Every rank, collectively (safetensors exports): counts its ranges, and gets their placements from rank 0, which
// creates the output files in `staging_dir` (not in a dry run, when it is empty).
Result<RowTablePlan> plan_row_table_ranges(const JobOptions& options, RowTables& model,
                                         const std::string& staging_dir, Comm& comm);

}  // namespace recis_convert
