// The optimizer-slot filter: the row transform that drops whole slots (and optimizer scalars) from the export.
//
// Optimizer state is recognised by name, as RecIS names it (recis-checkpoint.md 4.2, 4.3): every optimizer slot
// and optimizer scalar starts with the optimizer prefix "sparse_<opt>_". `id`, `embedding` and filter-hook slots
// (e.g. `step_filter`) are model state and are kept. --drop-slot names further slots to drop.
#pragma once

#include <set>
#include <string>

#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

class OptimizerSlotFilter : public RowTransform {
 public:
  OptimizerSlotFilter(bool drop_optimizer_state, std::set<std::string> extra_dropped_slots)
      : drop_optimizer_state_(drop_optimizer_state), extra_dropped_slots_(std::move(extra_dropped_slots)) {}

  // True when nothing is ever dropped: the export is then a byte-exact copy of each file.
  bool is_identity() const override { return !drop_optimizer_state_ && extra_dropped_slots_.empty(); }
  bool drops_anything() const override { return !is_identity(); }

  // Sparse blocks: dropped if the slot starts with "sparse_" (when filtering) or is named by --drop-slot.
  // Dense blocks ("name^ "): dropped if the name starts with "sparse_" (an optimizer scalar such as
  // "sparse_adamw_step") when filtering.
  bool keeps(const KeyClass& key) const;

  bool keeps(const SlotRef& slot) const override;
  bool keeps_dense(const std::string& name) const override;

 private:
  bool drop_optimizer_state_;
  std::set<std::string> extra_dropped_slots_;
};

}  // namespace recis_convert
