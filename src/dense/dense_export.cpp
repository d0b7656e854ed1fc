// librecis_dense.so: the dense export, the only code that includes torch headers (see dense_plugin.h).
//
// 1. load the dense architecture, already filled with model.pt's weights by the converter (dense/weight_fill.h,
//    no runtime needed). A module this libtorch cannot compile (an op of a newer torch) is not an error: the
//    response says why it was not frozen, and the converter keeps the filled archive;
// 2. build sample inputs (a safetensors file, or random blocks sized from the mc and fg configs);
// 3. run the module in eval mode, freeze it, run the frozen module and require both to agree (max |diff| <= 1e-6),
//    and check the frozen module at batch 1 and 4x the sample batch (the batch dimension stays dynamic);
// 4. write <model-name>.pt, output_info.json, inputs_dict_lite.json, params_order.json, input_columns.json,
//    graph.txt and sample_io.safetensors into the output directory.
// Inside the plugin, failures are DenseFailure exceptions (torch reports its own errors by throwing); the C entry
// point turns every exception into the JSON error response, so nothing is thrown across the boundary.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <torch/csrc/jit/api/module.h>
#include <torch/script.h>

#include "recis_convert/dense/dense_plugin.h"
#include "torch_support.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/safetensors.h"
#include "recis_convert/formats/strict_json.h"
#include "recis_convert/formats/torch_archive.h"

namespace recis_convert {
namespace {

using namespace dense;

// Feature widths from fg.json: feature_name -> embedding_dimension; sequence features as "<seq>_<feature>".
std::map<std::string, int64_t> feature_widths(const json& fg, const std::string& fg_path) {
  std::map<std::string, int64_t> widths;
  if (!fg.contains("features") || !fg["features"].is_array()) fail(ExitCode::kBadInput, fg_path, "has no \"features\" list");
  for (const auto& feature : fg["features"]) {
    if (feature.contains("sequence_name") && feature.contains("features")) {
      const std::string seq = feature["sequence_name"].get<std::string>();
      for (const auto& sub : feature["features"]) {
        if (sub.contains("feature_name") && sub.contains("embedding_dimension")) {
          widths[seq + "_" + sub["feature_name"].get<std::string>()] = sub["embedding_dimension"].get<int64_t>();
        }
      }
    } else if (feature.contains("feature_name") && feature.contains("embedding_dimension")) {
      widths[feature["feature_name"].get<std::string>()] = feature["embedding_dimension"].get<int64_t>();
    }
  }
  return widths;
}

// 2. Sample inputs, in forward-argument order.
std::vector<torch::Tensor> sample_inputs(const std::vector<std::string>& names, const DenseRequest& r) {
  std::vector<torch::Tensor> inputs;
  if (!r.sample_inputs.empty()) {
    FileDescriptor fd = value_or_fail(open_input_file(r.sample_inputs));  // closed however fail() exits
    const SafetensorsHeader header = open_safetensors(fd, r.sample_inputs);
    for (const auto& name : names) {
      inputs.push_back(read_named_tensor(fd.get(), header, name, r.sample_inputs, "for the forward argument of that name"));
    }
    return inputs;
  }
  if (r.fg_path.empty() || r.mc_path.empty()) {
    fail(ExitCode::kUsage, "", "the dense export needs --sample-inputs, or --fg and --mc to build sample inputs");
  }
  const json fg = value_or_fail(parse_strict_json(read_text(r.fg_path), r.fg_path, "fg config")).value;
  const json mc = value_or_fail(parse_strict_json(read_text(r.mc_path), r.mc_path, "mc config")).value;
  const auto widths = feature_widths(fg, r.fg_path);
  torch::manual_seed(20261123);  // the same sample every run
  for (const auto& name : names) {
    if (!mc.contains(name) || !mc[name].is_array()) {
      fail(ExitCode::kBadInput, r.mc_path, "has no block \"" + name + "\" for the forward argument of that name");
    }
    int64_t width = 0;
    for (const auto& column : mc[name]) {
      const std::string feature = column.is_object() ? column.value("column_name", "") : column.get<std::string>();
      auto it = widths.find(feature);
      if (it == widths.end()) {
        fail(ExitCode::kBadInput, r.fg_path, "has no feature \"" + feature + "\" (mc block \"" + name + "\")");
      }
      width += it->second;
    }
    inputs.push_back(torch::randn({r.sample_batch, width}));
  }
  return inputs;
}

json export_dense(const DenseRequest& r) {
  const auto start = std::chrono::steady_clock::now();
  std::optional<torch::jit::Module> module;
  try {
    module = load_torchscript(r.dense_model);
  } catch (const RuntimeLacks& lacks) {
    return json{{"code", 0}, {"file", ""}, {"message", ""}, {"warnings", json::array()}, {"files", json::array()},
                {"seconds", 0.0}, {"not_frozen", lacks.reason}};
  }
  const std::vector<std::string> names = forward_argument_names(*module);
  const std::vector<torch::Tensor> inputs = sample_inputs(names, r);
  return freeze_check_and_write(*module, names, inputs,
                                FrozenOutput{r.architecture, r.output_dir, r.model_name, r.outputs, r.mc_path},
                                {}, start);
}

// verify: re-scores sample_io.safetensors ("input.<arg>" in forward order, "output.<name>") with the exported
// frozen module; every output must match within 1e-6.
json verify_dense(const std::string& model_path, const std::string& sample_io) {
  std::optional<torch::jit::Module> loaded;
  try {
    loaded = load_torchscript(model_path);
  } catch (const RuntimeLacks& lacks) {
    return json{{"code", 0}, {"file", ""}, {"message", ""}, {"problems", json::array()}, {"max_diff", 0.0},
                {"outputs", 0}, {"not_scored", lacks.reason}};
  }
  torch::jit::Module& module = *loaded;
  module.eval();
  FileDescriptor fd = value_or_fail(open_input_file(sample_io));
  const SafetensorsHeader header = open_safetensors(fd, sample_io);
  std::vector<torch::Tensor> inputs;
  for (const auto& name : forward_argument_names(module)) {
    inputs.push_back(read_named_tensor(fd.get(), header, "input." + name, sample_io, "for a forward argument"));
  }
  std::vector<std::string> output_names;
  for (const auto& t : header.tensors) {
    if (t.name.compare(0, 7, "output.") == 0) output_names.push_back(t.name);
  }
  const std::vector<torch::Tensor> got = run(module, inputs);
  json problems = json::array();
  double max_diff = 0;
  if (got.size() != output_names.size()) {
    problems.push_back("the model returns " + std::to_string(got.size()) + " outputs, " + sample_io + " holds " +
                       std::to_string(output_names.size()));
  }
  for (size_t i = 0; i < got.size() && i < output_names.size(); ++i) {
    const torch::Tensor want = read_named_tensor(fd.get(), header, output_names[i], sample_io, "");
    if (want.sizes() != got[i].sizes()) {
      problems.push_back(output_names[i] + ": shape " + shape_text(got[i].sizes()) + ", expected " +
                         shape_text(want.sizes()));
      continue;
    }
    const double diff = (want.to(torch::kDouble) - got[i].to(torch::kDouble)).abs().max().item<double>();
    max_diff = std::max(max_diff, diff);
    if (!(diff <= 1e-6)) problems.push_back(output_names[i] + " differs from the recorded output by " + std::to_string(diff));
  }
  return json{{"code", 0}, {"file", ""}, {"message", ""}, {"problems", problems}, {"max_diff", max_diff},
              {"outputs", got.size()}};
}

}  // namespace
}  // namespace recis_convert

extern "C" __attribute__((visibility("default"))) char* recis_dense_export_v1(const char* request_json) {
  using namespace recis_convert;
  return dense::respond("dense export", [request_json] {
    const json j = json::parse(request_json);
    DenseRequest r;
    r.dense_model = j.at("dense_model").get<std::string>();
    r.architecture = j.at("architecture").get<std::string>();
    r.output_dir = j.at("output_dir").get<std::string>();
    r.model_name = j.at("model_name").get<std::string>();
    r.outputs = j.at("outputs").get<std::vector<std::string>>();
    r.sample_inputs = j.at("sample_inputs").get<std::string>();
    r.sample_batch = j.at("sample_batch").get<int>();
    r.fg_path = j.at("fg_path").get<std::string>();
    r.mc_path = j.at("mc_path").get<std::string>();
    return export_dense(r);
  });
}

extern "C" __attribute__((visibility("default"))) char* recis_dense_verify_v1(const char* request_json) {
  using namespace recis_convert;
  return dense::respond("dense verify", [request_json] {
    const json j = json::parse(request_json);
    return verify_dense(j.at("model").get<std::string>(), j.at("sample_io").get<std::string>());
  });
}

extern "C" __attribute__((visibility("default"))) void recis_dense_free_v1(char* response_json) {
  std::free(response_json);
}
