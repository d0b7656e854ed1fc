#include "recis_convert/sources/global_step.h"

#include <cstring>
#include <optional>

#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/torch_archive.h"

namespace recis_convert {
namespace {

constexpr const char* kFilterStepSuffix = "@filter_global_step";
constexpr const char* kLegacyStepSuffix = "._hashtable._filter_hook_impl._global_step";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
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

// The `<step>` of "ckpt_<step>", if the name is that.
std::optional<int64_t> step_of_ckpt_id(const std::string& ckpt_id) {
  if (ckpt_id.size() <= 5 || ckpt_id.compare(0, 5, "ckpt_") != 0 || ckpt_id.size() > 5 + 18) return std::nullopt;
  int64_t step = 0;
  for (size_t i = 5; i < ckpt_id.size(); ++i) {
    if (ckpt_id[i] < '0' || ckpt_id[i] > '9') return std::nullopt;
    step = step * 10 + (ckpt_id[i] - '0');
  }
  return step;
}

}  // namespace

Result<GlobalSteps> resolve_global_steps(const std::string& ckpt_dir, const std::string& ckpt_id,
                                         const std::vector<std::string>& tables) {
  GlobalSteps out;
  // model.pt: each table's own step, under either name
  std::map<std::string, GlobalStep> from_model;
  const std::string model = ckpt_dir + "/model.pt";
  if (!tables.empty() && is_regular_file(model)) {
    auto state = read_torch_state_dict(model);
    if (!state) return state.error();
    std::map<std::string, GlobalStep> legacy;
    for (const TorchTensor& t : state.value().tensors) {
      for (const std::string& table : tables) {
        const bool current = t.name == table + kFilterStepSuffix;
        const bool old = !current && ends_with(t.name, "." + table + kLegacyStepSuffix);
        if (!current && !old) continue;
        auto step = integer_scalar(state.value(), t);
        if (!step) return step.error();
        (current ? from_model : legacy)[table] = GlobalStep{step.value(), "model.pt " + t.name};
      }
    }
    for (auto& [table, step] : legacy) from_model.emplace(table, std::move(step));  // the current name wins
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
  const std::optional<int64_t> from_name = step_of_ckpt_id(ckpt_id);
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
                                     kFilterStepSuffix + " (nor the legacy filter-hook buffer), extra.pt no "
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

}  // namespace recis_convert
