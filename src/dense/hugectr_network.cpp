// The HugeCTR dense network as TorchScript (issue 8): the checked graph (hugectr_graph.h) becomes the source of a
// forward method (Module::define), its weights become parameters filled from the dense file in layer order, its
// BatchNorm running statistics buffers from <dense>.ntp.json; the module is then frozen, checked and written like
// the RecIS dense export (torch_support.h). The forward inputs are `dense` [B, dense_dim] and one [B, slots, vec]
// tensor per embedding: the embedding lookup stays with the serving system, as hugectr2onnx does with
// convert_embedding=False. Losses become their heads (sigmoid or softmax).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

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

std::string number(double v) {
  char text[64];
  std::snprintf(text, sizeof text, "%.9g", v);
  std::string out = text;
  if (out.find_first_of(".eEn") == std::string::npos) out += ".0";  // a float literal in TorchScript
  return out;
}

// TorchScript identifiers for HugeCTR tensor names (which may hold any character).
class Names {
 public:
  std::string of(const std::string& tensor) {
    auto it = ids_.find(tensor);
    if (it != ids_.end()) return it->second;
    std::string id;
    for (char c : tensor) id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    if (id.empty() || std::isdigit(static_cast<unsigned char>(id[0]))) id = "t_" + id;
    while (used_.count(id)) id += "_";
    used_.insert(id);
    return ids_[tensor] = id;
  }

 private:
  std::map<std::string, std::string> ids_;
  std::set<std::string> used_ = {"self", "torch", "return", "def", "if", "else", "for", "in", "and", "or", "not"};
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

// The forward's lines for the graph's dense layers, one layer at a time; registers the buffers a layer needs
// (BatchNorm statistics, Interaction indices). The one place per layer type, as read_dense_layer is in the parser.
struct ForwardWriter {
  torch::jit::Module& module;
  const HugectrGraph& g;
  const std::vector<std::vector<float>>& stats;
  const std::string& ntp_path;
  Names& ids;
  std::ostringstream& code;
  size_t batch_norm = 0, interaction = 0, temp = 0;  // numbering of the attributes layers add

  // `p`: the layer's parameter attributes, in weight order.
  void layer(const HugectrLayer& l, const std::vector<std::string>& p) {
    const std::string x = ids.of(l.bottoms[0]);
    const std::string y = l.tops.empty() ? "" : ids.of(l.tops[0]);
    const HugectrShape& in = g.shapes.at(l.bottoms[0]);
  code << "    # " << l.type_name << " " << l.tops[0] << "\n";
  switch (l.type) {
    case HugectrLayerType::kReLU:
      code << "    " << y << " = torch.relu(" << x << ")\n";
      break;
    case HugectrLayerType::kSigmoid:
      code << "    " << y << " = torch.sigmoid(" << x << ")\n";
      break;
    case HugectrLayerType::kDropout:
      code << "    " << y << " = " << x << "\n";
      break;
    case HugectrLayerType::kReshape: {
      const HugectrShape& out = g.shapes.at(l.tops[0]);
      code << "    " << y << " = " << x << ".reshape([-1";
      for (uint64_t d : out) code << ", " << d;
      code << "])\n";
      break;
    }
    case HugectrLayerType::kConcat:
      code << "    " << y << " = torch.cat([";
      for (size_t k = 0; k < l.bottoms.size(); ++k) code << (k ? ", " : "") << ids.of(l.bottoms[k]);
      code << "], " << l.axis << ")\n";
      break;
    case HugectrLayerType::kSlice:
      for (size_t k = 0; k < l.tops.size(); ++k) {
        const auto [a, b] = l.ranges[k];
        code << "    " << ids.of(l.tops[k]) << " = " << x << ".narrow(1, " << a << ", " << b - a << ")\n";
      }
      break;
    case HugectrLayerType::kInnerProduct:
    case HugectrLayerType::kFusedInnerProduct: {
      const std::string fc = "torch.matmul(" + x + ", self." + p[0] + ") + self." + p[1];
      code << "    " << y << " = "
           << (l.type == HugectrLayerType::kFusedInnerProduct ? "torch.relu(" + fc + ")" : fc) << "\n";
      break;
    }
    case HugectrLayerType::kBatchNorm: {
      const std::string mean = "bn" + std::to_string(batch_norm) + "_mean";
      const std::string var = "bn" + std::to_string(batch_norm) + "_var";
      for (int k = 0; k < 2; ++k) {
        const auto& values = stats[2 * batch_norm + static_cast<size_t>(k)];
        if (values.size() != in[0]) {
          fail(ExitCode::kBadInput, ntp_path, "BatchNorm " + std::to_string(batch_norm) + " has " +
                                                  std::to_string(values.size()) + " values, its layer " + l.tops[0] +
                                                  " has " + std::to_string(in[0]) + " channels");
        }
        module.register_buffer(k == 0 ? mean : var,
                               torch::from_blob(const_cast<float*>(values.data()),
                                                {static_cast<int64_t>(values.size())}, torch::kFloat)
                                   .clone());
      }
      code << "    " << y << " = (" << x << " - self." << mean << ") / torch.sqrt(self." << var << " + "
           << number(l.eps) << ") * self." << p[0] << " + self." << p[1] << "\n";
      ++batch_norm;
      break;
    }
    case HugectrLayerType::kMultiCross:
      code << "    " << y << " = " << x << "\n";
      for (size_t k = 0; k + 1 < p.size(); k += 2) {
        code << "    " << y << " = " << x << " * torch.matmul(" << y << ", self." << p[k] << ".t()) + self."
             << p[k + 1] << " + " << y << "\n";
      }
      break;
    case HugectrLayerType::kElementwiseMultiply:
    case HugectrLayerType::kAdd:
      code << "    " << y << " = " << x;
      for (size_t k = 1; k < l.bottoms.size(); ++k) {
        code << (l.type == HugectrLayerType::kAdd ? " + " : " * ") << ids.of(l.bottoms[k]);
      }
      code << "\n";
      break;
    case HugectrLayerType::kReduceSum:
      code << "    " << y << " = torch.sum(" << x << ", [" << l.axis << "], True)\n";
      break;
    case HugectrLayerType::kFmOrder2: {
      const std::string v = "fm" + std::to_string(temp), s = "fs" + std::to_string(temp++);
      code << "    " << v << " = " << x << ".reshape([-1, " << in[0] / l.out_dim << ", " << l.out_dim << "])\n";
      code << "    " << s << " = torch.sum(" << v << ", [1])\n";
      code << "    " << y << " = 0.5 * (" << s << " * " << s << " - torch.sum(" << v << " * " << v << ", [1]))\n";
      break;
    }
    case HugectrLayerType::kInteraction: {
      const std::string emb = ids.of(l.bottoms[1]);
      const int64_t n = static_cast<int64_t>(g.shapes.at(l.bottoms[1])[0]) + 1;
      const torch::Tensor lower = torch::tril_indices(n, n, -1);  // (i, j), i > j, row-major: HugeCTR's order
      const std::string rows = "ir" + std::to_string(interaction), cols = "ic" + std::to_string(interaction);
      module.register_buffer(rows, lower[0].clone());
      module.register_buffer(cols, lower[1].clone());
      const std::string all = "iv" + std::to_string(interaction), dots = "id" + std::to_string(interaction);
      code << "    " << all << " = torch.cat([" << x << ".unsqueeze(1), " << emb << "], 1)\n";
      code << "    " << dots << " = torch.bmm(" << all << ", " << all << ".transpose(1, 2))\n";
      code << "    " << y << " = torch.cat([" << x << ", " << dots << "[:, self." << rows << ", self." << cols
           << "], " << x << ".new_zeros([" << x << ".size(0), 1])], 1)\n";
      ++interaction;
      break;
    }
    case HugectrLayerType::kWeightMultiply:
      code << "    " << y << " = (" << x << ".reshape([-1, " << l.weight_slots << ", 1]) * self." << p[0]
           << ".unsqueeze(0)).reshape([-1, " << l.weight_slots * l.weight_vec << "])\n";
      break;
  }
  }
};

json export_hugectr_dense(const HugectrDenseRequest& r) {
  const auto start = std::chrono::steady_clock::now();
  const HugectrGraph g = value_or_fail(parse_hugectr_graph(read_text(r.graph), r.graph));
  // the weights, all of them: a dense network is small next to its tables
  FileDescriptor fd(::open(r.dense.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail(ExitCode::kBadInput, r.dense, "cannot open");
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

  Names ids;
  std::ostringstream code;
  code << "def forward(self";
  std::vector<std::string> arguments = {g.dense_input};
  for (const auto& e : g.embeddings) arguments.push_back(e.top);
  for (const auto& a : arguments) code << ", " << ids.of(a) << ": Tensor";
  code << "):\n";
  ForwardWriter forward{module, g, stats, ntp_path, ids, code};
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
    for (uint64_t d : g.shapes.at(a)) shape.push_back(static_cast<int64_t>(d));
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
