#include "recis_convert/plan/eviction_plan.h"

namespace recis_convert {

PartId part_of_key(std::string_view table, std::string_view key) {
  const size_t slash = key.rfind('/');
  return PartId{std::string(table), slash == std::string_view::npos ? std::string() : std::string(key.substr(slash + 1))};
}

uint64_t PartDecision::rows() const {
  return step_filter ? step_filter->rows : embedding ? embedding->rows : 0;
}

std::vector<PlannedPart> plan_eviction(const std::vector<LocatedColumn>& columns, const EvictionSettings& settings,
                                       const std::map<std::string, int>& owner_of_file) {
  std::map<PartId, PartDecision> decisions;
  for (const LocatedColumn& c : columns) {
    if (c.slot == "step_filter" && settings.rules.older_than) {
      auto step = settings.global_steps.find(c.part.table);
      if (step == settings.global_steps.end()) continue;
      PartDecision& d = decisions[c.part];
      d.step_filter = c.column;
      d.global_step = step->second;
      d.older_than = *settings.rules.older_than;
    } else if (c.slot == "embedding" && settings.rules.l2_below) {
      PartDecision& d = decisions[c.part];
      d.embedding = c.column;
      d.l2_below = *settings.rules.l2_below;
    }
  }
  std::vector<PlannedPart> out;
  out.reserve(decisions.size());
  for (auto& [part, decision] : decisions) {
    const DecisionColumn& first = decision.step_filter ? *decision.step_filter : *decision.embedding;
    auto owner = owner_of_file.find(first.path);
    out.push_back(PlannedPart{part, std::move(decision), owner == owner_of_file.end() ? 0 : owner->second});
  }
  return out;
}

}  // namespace recis_convert
