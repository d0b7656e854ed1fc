#include "recis_convert/sources/global_step.h"

#include <cstring>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/torch_archive.h"

namespace recis_convert {
namespace {

constexpr const char* kFilterStepSuffix = "@filter_global_step";
// RecIS v1.1's filter hook registers its step as a buffer of the hook module, so model.pt keys it by module path:
// `<owner>._filter_hook_impl._global_step`, where the owner is a HashTable module, or a DynamicEmbedding's
// `<...>._hashtable` (for an EmbeddingEngine table `<...>._ht.CoalescedHashtable_<sha>._hashtable`, shared by its
// children; hashtable_hook_impl.py 478, embedding_engine.py 608).
constexpr const char* kFilterHookStepSuffix = "._filter_hook_impl._global_step";
constexpr const char* kHashtableModule = "._hashtable";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The last component of the module that owns a filter-hook step buffer: "user" for
// "model.user._hashtable._filter_hook_impl._global_step" or "sparse_arch.user._filter_hook_impl._global_step",
// "CoalescedHashtable_<sha>" for an engine table's. Empty when `key` is no such buffer.
std::string filter_hook_owner(const std::string& key) {
  if (!ends_with(key, kFilterHookStepSuffix)) return "";
  std::string owner = key.substr(0, key.size() - std::strlen(kFilterHookStepSuffix));
  if (ends_with(owner, kHashtableModule)) owner.resize(owner.size() - std::strlen(kHashtableModule));
  const size_t dot = owner.rfind('.');
  return dot == std::string::npos ? owner : owner.substr(dot + 1);
}

// The value of an integer scalar (one element) tensor.
Result<int64_t> integer_scalar(const TorchStateDict& state, const TorchTensor& tensor) {
  const bool integer = tensor.dtype == DType::kI64 || tensor.dtype == DType::kI32;
  if (!integer || tensor.numel() != 1) {
    return bad_input(state.path, "\"" + tensor.name + "\" is not an integer scalar, so it is no global step");
  }
  auto data = read_tensor_data(state, tensor);
  if (!data) return data.error();
  if (tensor.dtype == DType::kI32) {
    int32_t v;
    std::memcpy(&v, data.value().data(), sizeof v);
    return static_cast<int64_t>(v);
  }
  int64_t v;
  std::memcpy(&v, data.value().data(), sizeof v);
  return v;
}

// Rules 1 and 2 for each table of `tables` that model.pt has a step for. Rule 2 takes the filter-hook buffer whose
// owner module is named after the table; the children of an EmbeddingEngine table share their engine table's
// buffer, but a checkpoint does not record which engine table holds which child (its name is a hash of the
// table's settings), so those buffers serve every other table when they agree, as when one engine table has a
// filter hook. When they disagree, the tables take the next rule, with a warning.
Result<std::map<std::string, GlobalStep>> filter_steps_in_model(const TorchStateDict& state,
                                                                const std::vector<std::string>& tables,
                                                                std::vector<std::string>& warnings) {
  const std::set<std::string> wanted(tables.begin(), tables.end());
  std::map<std::string, GlobalStep> by_name, by_owner;
  std::vector<GlobalStep> unclaimed;  // the buffers of owners that are no table: engine tables'
  for (const TorchTensor& t : state.tensors) {
    std::string table;
    const bool named = ends_with(t.name, kFilterStepSuffix);
    if (named) {
      table = t.name.substr(0, t.name.size() - std::strlen(kFilterStepSuffix));
      if (!wanted.count(table)) continue;
    } else {
      table = filter_hook_owner(t.name);
      if (table.empty()) continue;
    }
    auto step = integer_scalar(state, t);
    if (!step) return step.error();
    GlobalStep found{step.value(), "model.pt " + t.name};
    if (named) {
      by_name[table] = std::move(found);
    } else if (wanted.count(table)) {
      by_owner[table] = std::move(found);
    } else {
      unclaimed.push_back(std::move(found));
    }
  }
  std::optional<GlobalStep> shared;
  bool agree = !unclaimed.empty();
  for (const GlobalStep& s : unclaimed) agree = agree && s.step == unclaimed.front().step;
  if (agree) {
    shared = unclaimed.front();
    if (unclaimed.size() > 1) {
      shared->source += " (and " + std::to_string(unclaimed.size() - 1) + " more filter-hook buffers, all " +
                        std::to_string(shared->step) + ")";
    }
  }
  std::map<std::string, GlobalStep> out;
  std::string undecided;
  for (const std::string& table : tables) {
    if (by_name.count(table)) {
      out[table] = by_name[table];
    } else if (by_owner.count(table)) {
      out[table] = by_owner[table];
    } else if (shared) {
      out[table] = *shared;
    } else if (!unclaimed.empty()) {
      undecided += (undecided.empty() ? "" : ", ") + nlohmann::json(table).dump();
    }
  }
  if (!undecided.empty()) {
    std::string steps;
    for (const GlobalStep& s : unclaimed) steps += (steps.empty() ? "" : ", ") + std::to_string(s.step);
    warnings.push_back(state.path + ": its " + std::to_string(unclaimed.size()) + " engine tables' filter-hook " +
                       "steps differ (" + steps + ") and a checkpoint does not record which engine table holds " +
                       "which child, so " + undecided + " take the next record of the global step");
  }
  return out;
}

}  // namespace

Result<GlobalSteps> resolve_global_steps(const std::string& ckpt_dir, const std::string& ckpt_id,
                                         const std::vector<std::string>& tables) {
  GlobalSteps out;
  // model.pt: each table's own step (rules 1 and 2)
  std::map<std::string, GlobalStep> from_model;
  const std::string model = ckpt_dir + "/model.pt";
  if (!tables.empty() && is_regular_file(model)) {
    auto state = read_torch_state_dict(model);
    if (!state) return state.error();
    auto steps = filter_steps_in_model(state.value(), tables, out.warnings);
    if (!steps) return steps.error();
    from_model = std::move(steps).value();
  }
  // extra.pt: the trainer's step, for the tables model.pt says nothing about
  std::optional<GlobalStep> from_extra;
  const std::string extra = ckpt_dir + "/extra.pt";
  if (is_regular_file(extra)) {
    auto state = read_torch_state_dict(extra, NonTensorEntries::kSkip);
    if (!state) {
      out.warnings.push_back("the global step in extra.pt could not be read (" + state.error().describe() + ")");
    } else {
      for (const TorchTensor& t : state.value().tensors) {
        if (t.name != "global_step") continue;
        auto step = integer_scalar(state.value(), t);
        if (!step) return step.error();
        from_extra = GlobalStep{step.value(), "extra.pt global_step"};
      }
    }
  }
  const std::optional<int64_t> from_name = step_in_name(ckpt_id, "ckpt_");
  if (from_extra) {
    out.checkpoint = from_extra;
  } else if (from_name) {
    out.checkpoint = GlobalStep{*from_name, ckpt_id};
  }
  for (const auto& table : tables) {
    auto model_step = from_model.find(table);
    if (model_step != from_model.end()) {
      out.tables[table] = model_step->second;
    } else if (from_extra) {
      out.tables[table] = *from_extra;
    } else if (from_name) {
      out.tables[table] = GlobalStep{*from_name, ckpt_id};
    } else {
      return bad_input(ckpt_dir, "no global step for table \"" + table + "\": model.pt has no " + table +
                                     kFilterStepSuffix + " nor a filter-hook step buffer, extra.pt no "
                                     "global_step, and \"" + ckpt_id + "\" is not named ckpt_<step>");
    }
  }
  return out;
}

ExportClock export_clock(GlobalSteps steps) {
  ExportClock out;
  out.tables = std::move(steps.tables);
  for (const auto& [table, step] : out.tables) {
    if (!out.step || step.step > out.step->step) out.step = step;
  }
  if (!out.step) out.step = std::move(steps.checkpoint);
  return out;
}

std::optional<int64_t> step_in_name(const std::string& name, const std::string& prefix) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0 || name.size() > prefix.size() + 18) {
    return std::nullopt;
  }
  int64_t step = 0;
  for (size_t i = prefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

}  // namespace recis_convert
