// The TorchScript forward of a checked HugeCTR graph, one layer at a time (plugin-internal: includes torch). Each
// layer type computes what hugectr2onnx's graph_builder.py builds for it, as read_dense_layer (hugectr_layers.h)
// reads it; the two are the one place per layer type on each side.
#pragma once

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "recis_convert/formats/hugectr_graph.h"
#include "torch_support.h"

namespace recis_convert {
namespace dense {

// TorchScript identifiers for HugeCTR tensor names (which may hold any character).
class TorchScriptNames {
 public:
  std::string of(const std::string& tensor);

 private:
  std::map<std::string, std::string> ids_;
  std::set<std::string> used_ = {"self", "torch", "return", "def", "if", "else", "for", "in", "and", "or", "not"};
};

// Writes the forward's lines for the graph's dense layers into `code` and registers the constant buffers a layer
// needs (BatchNorm statistics, Interaction indices, Reshape's selected slots, SequenceMask's positions) on
// `module`.
class ForwardWriter {
 public:
  // `stats`: the BatchNorm running statistics, mean0, var0, mean1, ... (from `ntp_path`).
  ForwardWriter(torch::jit::Module& module, const HugectrGraph& g, const std::vector<std::vector<float>>& stats,
                const std::string& ntp_path, TorchScriptNames& ids, std::ostringstream& code)
      : module_(module), g_(g), stats_(stats), ntp_path_(ntp_path), ids_(ids), code_(code) {}

  // `p`: the layer's parameter attributes, in weight order.
  void layer(const HugectrLayer& l, const std::vector<std::string>& p);

 private:
  std::string buffer(const std::string& prefix, const torch::Tensor& value);  // registers, returns "self.<name>"
  std::string temp(const std::string& prefix);

  torch::jit::Module& module_;
  const HugectrGraph& g_;
  const std::vector<std::vector<float>>& stats_;
  const std::string& ntp_path_;
  TorchScriptNames& ids_;
  std::ostringstream& code_;
  size_t batch_norm_ = 0, buffers_ = 0, temps_ = 0;
};

// A double as a TorchScript float literal.
std::string float_literal(double v);

}  // namespace dense
}  // namespace recis_convert
