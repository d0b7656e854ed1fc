// The HugeCTR dense network as TorchScript (issue 8): the checked graph (hugectr_graph.h) becomes the source of a
// forward method (Module::define), its weights become parameters filled from the dense file in layer order, its
// BatchNorm running statistics buffers from <dense>.ntp.json; the module is then frozen, checked and written like
// the RecIS dense export (torch_support.h). The forward inputs are `dense` [B, dense_dim] (none when dense_dim is
// 0) and one [B, slots, vec] tensor per embedding: the embedding lookup stays with the serving system, as
// hugectr2onnx does with convert_embedding=False. Losses become their heads (sigmoid or softmax), one output each,
// in graph order. The layers' code is hugectr_forward.cpp.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "hugectr_forward.h"
#include "recis_convert/formats/hugectr_graph.h"
#include "recis_convert/formats/strict_json.h"
#include "torch_support.h"

namespace recis_convert {
namespace {

using namespace dense;

struct HugectrDenseRequest {
  std::string graph, dense, ntp, output_dir, model_name;
  std::vector<std::string> outputs;
  int sample_batch = 8;
};

std::vector<std::vector<float>> read_ntp(const std::string& path, const HugectrGraph& g) {
  std::vector<std::vector<float>> stats;  // mean0, var0, mean1, var1, ...
  if (g.batch_norms == 0) return stats;
  const json ntp = value_or_fail(parse_strict_json(read_text(path), path, "BatchNorm statistics")).value;
  if (!ntp.contains("layers") || !ntp["layers"].is_array() || ntp["layers"].size() < g.batch_norms) {
    fail(ExitCode::kBadInput, path, "needs " + std::to_string(g.batch_norms) + " BatchNorm entries in \"layers\"");
  }
  for (size_t k = 0; k < g.batch_norms; ++k) {
    const json& entry = ntp["layers"][k];
    for (const char* key : {"mean", "var"}) {
      if (!entry.contains(key) || !entry[key].is_array()) fail(ExitCode::kBadInput, path, std::string("entry ") + std::to_string(k) + " has no " + key);
      std::vector<float> values;
      for (const auto& v : entry[key]) {
        if (!v.is_number()) fail(ExitCode::kBadInput, path, std::string("entry ") + std::to_string(k) + ": " + key + " is not numbers");
        values.push_back(v.get<float>());
      }
      stats.push_back(std::move(values));
    }
  }
  return stats;
}

json export_hugectr_dense(const HugectrDenseRequest& r) {
  const auto start = std::chrono::steady_clock::now();
  const HugectrGraph g = value_or_fail(parse_hugectr_graph(read_text(r.graph), r.graph));
  // the weights, all of them: a dense network is small next to its tables
  FileDescriptor fd = value_or_fail(open_input_file(r.dense));
  struct stat st {};
  ::fstat(fd.get(), &st);
  value_or_fail(Result<Ok>(check_dense_file_size(g, static_cast<uint64_t>(st.st_size), r.dense)));
  std::vector<float> weights(g.weight_floats);
  value_or_fail(Result<Ok>(read_exact(fd.get(), 0, weights.size() * 4, weights.data(), r.dense, "the weights")));
  const std::string ntp_path = r.ntp.empty() ? r.dense + ".ntp.json" : r.ntp;
  const std::vector<std::vector<float>> stats = read_ntp(ntp_path, g);

  torch::jit::Module module("hugectr_model");
  std::map<size_t, std::vector<std::string>> params_of_layer;  // layer -> parameter attribute names, in order
  for (size_t k = 0; k < g.weights.size(); ++k) {
    const HugectrWeight& w = g.weights[k];
    std::vector<int64_t> shape(w.shape.begin(), w.shape.end());
    torch::Tensor t = torch::from_blob(weights.data() + w.offset, shape, torch::kFloat).clone();
    const std::string name = "w" + std::to_string(k);
    module.register_parameter(name, t, false);
    params_of_layer[w.layer].push_back(name);
  }

  TorchScriptNames ids;
  std::ostringstream code;
  code << "def forward(self";
  std::vector<std::string> arguments;
  if (g.dense_dim > 0) arguments.push_back(g.dense_input);  // dense_dim 0: no dense argument at all
  for (const auto& e : g.embeddings) arguments.push_back(e.top);
  for (const auto& a : arguments) code << ", " << ids.of(a) << ": Tensor";
  code << "):\n";
  ForwardWriter forward(module, g, stats, ntp_path, ids, code);
  for (size_t li = 0; li < g.layers.size(); ++li) forward.layer(g.layers[li], params_of_layer[li]);
  code << "    return ";
  if (g.outputs.size() > 1) code << "(";
  for (size_t k = 0; k < g.outputs.size(); ++k) {
    const HugectrOutput& o = g.outputs[k];
    code << (k ? ", " : "")
         << (o.head == "softmax" ? "torch.softmax(" + ids.of(o.input) + ", 1)" : "torch.sigmoid(" + ids.of(o.input) + ")");
  }
  code << (g.outputs.size() > 1 ? ")\n" : "\n");
  try {
    module.define(code.str());
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    fail(ExitCode::kInternal, r.graph, "the generated TorchScript does not compile: " + what.substr(0, what.find('\n')));
  }

  torch::manual_seed(20261123);  // the same sample every run
  std::vector<torch::Tensor> inputs;
  for (const auto& a : arguments) {
    std::vector<int64_t> shape = {r.sample_batch};
    for (uint64_t d : g.tensors.at(a).dims) shape.push_back(static_cast<int64_t>(d));
    inputs.push_back(torch::randn(shape));
  }
  std::vector<std::string> outputs = r.outputs;
  if (outputs.empty()) {
    for (const auto& o : g.outputs) outputs.push_back(o.name);
  }
  const std::vector<std::string> names = forward_argument_names(module);
  return freeze_check_and_write(module, names, inputs, FrozenOutput{r.graph, r.output_dir, r.model_name, outputs, ""},
                                {}, start);
}

}  // namespace
}  // namespace recis_convert

extern "C" __attribute__((visibility("default"))) char* recis_hugectr_dense_v1(const char* request_json) {
  using namespace recis_convert;
  return dense::respond("HugeCTR dense export", [request_json] {
    const dense::json j = dense::json::parse(request_json);
    HugectrDenseRequest r;
    r.graph = j.at("graph").get<std::string>();
    r.dense = j.at("dense").get<std::string>();
    r.ntp = j.at("ntp").get<std::string>();
    r.output_dir = j.at("output_dir").get<std::string>();
    r.model_name = j.at("model_name").get<std::string>();
    r.outputs = j.at("outputs").get<std::vector<std::string>>();
    r.sample_batch = j.at("sample_batch").get<int>();
    return export_hugectr_dense(r);
  });
}
