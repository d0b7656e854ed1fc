// The dense layers of a HugeCTR graph, one type at a time: the one table of supported types (spelling, type, a
// note for README) and, per type, its parameters, its weights in dense-file order and the shapes of its tops.
// Each type follows hugectr2onnx (NVIDIA-Merlin/HugeCTR onnx_converter/: hugectr_loader.py for the parameters and
// the weight order, graph_builder.py for shapes and computation). Pure: hugectr_graph.cpp walks the graph and calls
// read_dense_layer once per layer.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "recis_convert/formats/hugectr_graph.h"

namespace recis_convert {

// Reads a layer's parameters; its errors name the file and the layer: "<path>: layer 7 (GRU): ...".
class HugectrLayerReader {
 public:
  HugectrLayerReader(const std::string& path, size_t index, const std::string& type)
      : where_("layer " + std::to_string(index) + " (" + type + ")"), path_(path) {}

  Error error(const std::string& message) const { return bad_input(path_, where_ + ": " + message); }

  // `object.key`, a positive integer (at most 2^40).
  Result<uint64_t> positive(const nlohmann::json& object, const char* key) const;
  // `object.key`, a number >= 0, or `fallback` when absent.
  Result<double> non_negative(const nlohmann::json& object, const char* key, double fallback) const;

 private:
  std::string where_;
  std::string path_;
};

struct HugectrLayerTypeEntry {
  std::string spelling;  // as the graph's "type" spells it
  HugectrLayerType type;
  const char* note;      // README's column
};

// Every supported dense layer type, in README's order.
const std::vector<HugectrLayerTypeEntry>& hugectr_layer_types();
const HugectrLayerType* hugectr_layer_type_named(const std::string& spelling);

uint64_t element_count(const HugectrShape& shape);

// "[batch, 26, 16]", "[batch x 10, 36]".
std::string tensor_text(const HugectrTensor& t);

// One dense layer: reads its parameters into `l`, appends its weights (dense-file order) through `add_weight`, and
// returns the shapes of its tops from its JSON and its bottoms' shapes `in` (one per bottom, all with the same
// rows_per_sample).
using HugectrAddWeight = std::function<void(const std::string& name, HugectrShape shape)>;
Result<std::vector<HugectrTensor>> read_dense_layer(HugectrLayer& l, const nlohmann::json& layer,
                                                   const std::vector<HugectrTensor>& in,
                                                   const HugectrLayerReader& reader, const HugectrAddWeight& add_weight);

}  // namespace recis_convert
