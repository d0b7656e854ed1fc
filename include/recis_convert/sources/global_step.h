// The global step of each table: the clock of step-based eviction (a row is stale when the table's global step
// minus its `step_filter` value is large) and of delta exports. RecIS records it in several places over its
// versions; each table takes the first that exists (recis-checkpoint.md §15):
//   1. model.pt's `<table>@filter_global_step` (the filter hook's step, upstream RecIS)
//   2. model.pt's filter-hook buffer `<owner>._filter_hook_impl._global_step` (RecIS v1.1): the one whose owner
//      module is named after the table (`<...>.<table>` or `<...>.<table>._hashtable`), else the buffers of
//      EmbeddingEngine tables (`<...>.CoalescedHashtable_<sha>._hashtable`, shared by their children) when they
//      all hold one step, since a checkpoint does not record which engine table holds which child
//   3. extra.pt's `global_step` (the trainer's step)
//   4. the `<step>` of the checkpoint's directory name `ckpt_<step>`
// The log, the manifest and the run record say which one was used, per table.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"

namespace recis_convert {

struct GlobalStep {
  int64_t step = 0;
  std::string source;  // e.g. "model.pt user_id@filter_global_step", "extra.pt global_step", "ckpt_200"
};

struct GlobalSteps {
  std::map<std::string, GlobalStep> tables;  // by table
  std::optional<GlobalStep> checkpoint;      // the checkpoint's own step: extra.pt's, else ckpt_<step>'s
  std::vector<std::string> warnings;         // e.g. an extra.pt that could not be read, so a later record was used
};

// The `<step>` of a checkpoint directory named `<prefix><step>` (RecIS's "ckpt_", TorchEasyRec's "model.ckpt-"), if
// the name is that: digits only, at most 18 of them.
std::optional<int64_t> step_in_name(const std::string& name, const std::string& prefix);

// Reads model.pt (when a table is asked for) and extra.pt of `ckpt_dir` (those that exist) once. A record that
// exists but is not an integer scalar tensor is bad input naming the file and key; no record at all for a table
// is bad input naming it.
Result<GlobalSteps> resolve_global_steps(const std::string& ckpt_dir, const std::string& ckpt_id,
                                         const std::vector<std::string>& tables);

// The clock of an export: the global step of each table with a step_filter slot, and the export's own step (its
// manifest's "step", what a later delta starts after): the largest of those tables' steps, since every row's
// step_filter is at most its table's step, else the checkpoint's own step. Unknown when nothing records one.
struct ExportClock {
  std::map<std::string, GlobalStep> tables;
  std::optional<GlobalStep> step;
};
ExportClock export_clock(GlobalSteps steps);

}  // namespace recis_convert
