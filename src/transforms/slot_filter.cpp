#include "recis_convert/transforms/slot_filter.h"

namespace recis_convert {
namespace {

bool is_optimizer_name(const std::string& name) { return name.rfind("sparse_", 0) == 0; }

}  // namespace

bool OptimizerSlotFilter::keeps(const SlotRef& slot) const {
  if (drop_optimizer_state_ && is_optimizer_name(slot.slot)) return false;
  return extra_dropped_slots_.count(slot.slot) == 0;
}

bool OptimizerSlotFilter::keeps_dense(const std::string& name) const {
  return !(drop_optimizer_state_ && is_optimizer_name(name));
}

bool OptimizerSlotFilter::keeps(const KeyClass& key) const {
  return key.sparse ? keeps(SlotRef{key.sparse_key.child, key.sparse_key.slot, "", ""}) : keeps_dense(key.dense_name);
}

}  // namespace recis_convert
