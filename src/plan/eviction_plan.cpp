#include "recis_convert/plan/eviction_plan.h"

#include <nlohmann/json.hpp>

namespace recis_convert {

PartId part_of_key(std::string_view table, std::string_view key) {
  const size_t slash = key.rfind('/');
  return PartId{std::string(table), slash == std::string_view::npos ? std::string() : std::string(key.substr(slash + 1))};
}

uint64_t PartDecision::rows() const {
  return step_filter ? step_filter->rows : embedding ? embedding->rows : 0;
}

Status check_decision_rows(const std::vector<LocatedColumn>& columns) {
  std::map<PartId, const DecisionColumn*> ids;
  for (const LocatedColumn& c : columns) {
    if (c.slot == "id") ids.emplace(c.part, &c.column);
  }
  for (const LocatedColumn& c : columns) {
    auto id = ids.find(c.part);
    if (c.slot == "id" || id == ids.end() || id->second->rows == c.column.rows) continue;
    return bad_input(c.column.path, "tensor " + nlohmann::json(c.column.tensor).dump() + " has " +
                                        std::to_string(c.column.rows) + " rows but its part's " +
                                        nlohmann::json(id->second->tensor).dump() + " has " +
                                        std::to_string(id->second->rows));
  }
  return Ok{};
}

std::vector<PlannedPart> plan_eviction(const std::vector<LocatedColumn>& columns, const EvictionSettings& settings,
                                       const std::map<std::string, int>& owner_of_file) {
  std::map<PartId, PartDecision> decisions;
  for (const LocatedColumn& c : columns) {
    if (c.slot == "step_filter" && settings.by_step()) {
      auto step = settings.global_steps.find(c.part.table);
      const bool by_age = settings.rules.older_than && step != settings.global_steps.end();
      if (!by_age && !settings.changed_after) continue;
      PartDecision& d = decisions[c.part];
      d.step_filter = c.column;
      if (by_age) {
        d.global_step = step->second;
        d.older_than = *settings.rules.older_than;
      }
      d.changed_after = settings.changed_after;
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
    out.push_back(PlannedPart{part, std::move(decision), owner == owner_of_file.end() ? 0 : owner->second, {}});
  }
  return out;
}

}  // namespace recis_convert
