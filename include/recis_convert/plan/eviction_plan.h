// Which rows each part keeps is decided once per part, by one rank, before any row moves: rank 0 plans it from
// the decision columns every rank found in its own files' headers (transforms/row_selection.h:
// decision_columns_in). Pure: unit-tested without MPI, the same plan whatever order the columns arrive in.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "recis_convert/formats/safetensors.h"
#include "recis_convert/transforms/row_eviction.h"

namespace recis_convert {

// A tensor's rows inside a data file.
struct DecisionColumn {
  std::string path;              // the data file
  std::string tensor;            // its key, for messages
  uint64_t offset = 0;           // absolute offset of its first row in the file
  uint64_t rows = 0;
  DType dtype = DType::kI64;
  uint64_t row_elements = 1;     // 1 for step_filter ([N, 1]), the dim for embedding
};

struct PartDecision {
  std::optional<DecisionColumn> step_filter;  // with --evict-older-than or --delta-since (tables that have the slot)
  int64_t global_step = 0;
  std::optional<uint64_t> older_than;         // --evict-older-than, where the table has a global step
  std::optional<int64_t> changed_after;       // --delta-since: only the rows updated after this step stay
  std::optional<DecisionColumn> embedding;    // with --evict-l2-below
  float l2_below = 0;

  bool decides() const { return step_filter.has_value() || embedding.has_value(); }
  uint64_t rows() const;  // the part's rows (every column has them; checked by RowSelector::open)
};

// One part of a table: the table and RecIS's part suffix ("part_0_3", which fixes its slice).
struct PartId {
  std::string table;
  std::string part;
  bool operator<(const PartId& o) const { return table != o.table ? table < o.table : part < o.part; }
  bool operator==(const PartId& o) const { return table == o.table && part == o.part; }
};

// The part a sparse tensor belongs to: its table and the suffix of its key "child.slot/part_r_R".
PartId part_of_key(std::string_view table, std::string_view key);

// A decision column found in a data file, and whose part it decides.
struct LocatedColumn {
  PartId part;
  std::string slot;  // "step_filter" or "embedding", or "id" (the rows the others must have)
  DecisionColumn column;
};

struct EvictionSettings {
  EvictionRules rules;
  std::map<std::string, int64_t> global_steps;  // per table that has a step_filter slot (global_step.h)
  std::optional<int64_t> changed_after;         // --delta-since's base step (row_delta.h)

  bool by_step() const { return rules.older_than.has_value() || changed_after.has_value(); }
  bool by_norm() const { return rules.l2_below.has_value(); }
};

struct PlannedPart {
  PartId part;
  PartDecision decision;
  int counter = 0;  // the rank that counts the part's kept rows: the owner of the file of its step_filter column,
                    // else of its embedding column
  std::string kept_rows_file;  // where the counter records its decisions (transforms/kept_row_bitmap.h); "" for nowhere
};

// A planned part with its counts: what a rank writing any slot of the part needs.
struct PartSelection {
  PartId part;
  PartDecision decision;
  uint64_t rows = 0;  // the part's rows in the source
  uint64_t kept = 0;  // the rows that stay
  std::string kept_rows_file;  // the count pass's decisions, when it recorded them (transforms/kept_row_bitmap.h)
};

// The selections a rank needs: those of the parts whose slots lie in its data files.
using PartSelections = std::map<PartId, std::shared_ptr<const PartSelection>>;

// Every step_filter and embedding column has as many rows as its part's id column, if that was found: else
// kBadInput naming the column's file, its tensor and the id's (the part is in both names). Checked in the order
// given, so the same message whatever the timing.
Status check_decision_rows(const std::vector<LocatedColumn>& columns);

// One PlannedPart per part that a rule applies to, sorted by part. A part no rule applies to (under
// --evict-older-than or --delta-since alone, a table without step_filter; under --evict-older-than, one without a
// global step) is absent: exported whole.
// `owner_of_file`: data file path -> the rank that exports it.
std::vector<PlannedPart> plan_eviction(const std::vector<LocatedColumn>& columns, const EvictionSettings& settings,
                                       const std::map<std::string, int>& owner_of_file);

}  // namespace recis_convert
