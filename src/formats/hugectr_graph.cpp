#include "recis_convert/formats/hugectr_graph.h"

#include <functional>
#include <numeric>
#include <set>

#include "recis_convert/formats/strict_json.h"

namespace recis_convert {
namespace {

using json = nlohmann::json;

uint64_t elements(const HugectrShape& shape) {
  return std::accumulate(shape.begin(), shape.end(), uint64_t{1}, [](uint64_t a, uint64_t b) { return a * b; });
}

std::string shape_text(const HugectrShape& shape) {
  std::string out = "[batch";
  for (uint64_t d : shape) out += ", " + std::to_string(d);
  return out + "]";
}

// An optional non-negative integer parameter (json(1) literals are signed in nlohmann, so not is_number_unsigned).
uint64_t integer_or(const json& layer, const char* key, uint64_t fallback) {
  const json value = layer.value(key, json(fallback));
  return value.is_number_integer() && value.get<int64_t>() >= 0 ? value.get<uint64_t>() : 0;
}

std::vector<std::string> names(const json& value) {
  if (value.is_string()) return {value.get<std::string>()};
  std::vector<std::string> out;
  if (value.is_array()) {
    for (const auto& v : value) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

// Reads a positive integer parameter `object.key` of a layer, or fails naming the layer.
class LayerReader {
 public:
  LayerReader(const std::string& path, size_t index, const std::string& type)
      : where_("layer " + std::to_string(index) + " (" + type + ")"), path_(path) {}

  Error error(const std::string& message) const { return bad_input(path_, where_ + ": " + message); }

  Result<uint64_t> positive(const json& object, const char* key) const {
    if (!object.is_object() || !object.contains(key) || !object[key].is_number_unsigned() || object[key].get<uint64_t>() == 0 ||
        object[key].get<uint64_t>() > (1ull << 40)) {
      return error(std::string("needs a positive integer \"") + key + "\"");
    }
    return object[key].get<uint64_t>();
  }

 private:
  std::string where_;
  std::string path_;
};

using Type = HugectrLayerType;

// The graph's spelling of each supported dense layer type: the only place layer types are strings. The notes are
// README's (hugectr_layers_markdown), so the list there and in the error message cannot drift from this table.
struct LayerTypeEntry {
  std::string spelling;
  Type type;
  const char* note;
};
const std::vector<LayerTypeEntry> kLayerTypeTable = {
    {"Reshape", Type::kReshape, "`leading_dim`, `time_step`; the batch dimension stays"},
    {"Concat", Type::kConcat, "`axis` (default 1)"},
    {"Slice", Type::kSlice, "`ranges` of a 2-D input, one top each"},
    {"InnerProduct", Type::kInnerProduct, "2-D or 3-D input; weight `[in, out]`, bias `[1, out]`"},
    {"FusedInnerProduct", Type::kFusedInnerProduct, "an InnerProduct with its ReLU"},
    {"ReLU", Type::kReLU, ""},
    {"Sigmoid", Type::kSigmoid, ""},
    {"Dropout", Type::kDropout, "identity at inference"},
    {"BatchNorm", Type::kBatchNorm, "inference form; gamma, beta from the dense file, running statistics from "
                                    "`<dense>.ntp.json`"},
    {"MultiCross", Type::kMultiCross, "DCN v1 (not v2's `projection_dim`); w, b per layer"},
    {"ElementwiseMultiply", Type::kElementwiseMultiply, ""},
    {"Add", Type::kAdd, ""},
    {"ReduceSum", Type::kReduceSum, "keeps the reduced dimension, as HugeCTR does"},
    {"FmOrder2", Type::kFmOrder2, ""},
    {"Interaction", Type::kInteraction, "DLRM: dense, the lower triangle of dot products in row order, one zero of "
                                        "padding, as HugeCTR's kernel writes it"},
    {"WeightMultiply", Type::kWeightMultiply, "W `weight_dims`"}};

const Type* layer_type_named(const std::string& name) {
  for (const auto& entry : kLayerTypeTable) {
    if (entry.spelling == name) return &entry.type;
  }
  return nullptr;
}

// Loss layers become the head of their input: what the model outputs at inference.
const std::vector<std::pair<std::string, std::string>> kLossHeads = {
    {"BinaryCrossEntropyLoss", "sigmoid"}, {"CrossEntropyLoss", "softmax"}, {"MultiCrossEntropyLoss", "sigmoid"}};

template <typename Value>
const Value* find_named(const std::vector<std::pair<std::string, Value>>& table, const std::string& name) {
  for (const auto& [spelling, value] : table) {
    if (spelling == name) return &value;
  }
  return nullptr;
}

// One dense layer: its parameters (read into `l`), its weights (appended with `add_weight`, in dense-file order)
// and the shapes of its tops, from its JSON and the shapes of its bottoms. The one place per layer type.
Result<std::vector<HugectrShape>> read_dense_layer(HugectrLayer& l, const json& layer, const std::vector<HugectrShape>& in,
                                                   const LayerReader& reader,
                                                   const std::function<void(const std::string&, HugectrShape)>& add_weight) {
  std::vector<HugectrShape> out;
  const HugectrShape& x = in[0];
  switch (l.type) {
    case Type::kReLU:
    case Type::kSigmoid:
    case Type::kDropout:
      out = {x};
      break;
    case Type::kReshape: {
      if (layer.contains("selected")) return reader.error("Reshape with \"selected\" is not supported");
      auto leading = reader.positive(layer, "leading_dim");
      if (!leading) return leading.error();
      const uint64_t steps = integer_or(layer, "time_step", 0);
      const uint64_t n = elements(x);
      if (steps > 0) {
        if (n != steps * leading.value()) {
          return reader.error(shape_text(x) + " cannot become [batch, time_step, leading_dim]");
        }
        out = {{steps, leading.value()}};
      } else if (n == leading.value()) {
        out = {{leading.value()}};
      } else {
        return reader.error("reshaping " + shape_text(x) + " to leading_dim " + std::to_string(leading.value()) +
                            " would change the batch dimension; not supported");
      }
      break;
    }
    case Type::kConcat: {
      l.axis = integer_or(layer, "axis", 1);
      const uint64_t axis = l.axis;
      if (axis < 1 || axis > x.size()) return reader.error("axis must be 1.." + std::to_string(x.size()));
      HugectrShape joined = x;
      joined[axis - 1] = 0;
      for (const auto& s : in) {
        for (size_t d = 0; d < s.size(); ++d) {
          if (s.size() != x.size() || (d != axis - 1 && s[d] != x[d])) {
            return reader.error("inputs " + shape_text(x) + " and " + shape_text(s) +
                                " cannot be concatenated on axis " + std::to_string(axis));
          }
        }
        joined[axis - 1] += s[axis - 1];
      }
      out = {joined};
      break;
    }
    case Type::kSlice: {
      if (x.size() != 1) return reader.error("slices 2-D inputs only, not " + shape_text(x));
      const json ranges = layer.value("ranges", json());
      if (!ranges.is_array() || ranges.size() != l.tops.size()) {
        return reader.error("needs one [begin, end] range per top");
      }
      for (const auto& r : ranges) {
        if (!r.is_array() || r.size() != 2 || !r[0].is_number_unsigned() || !r[1].is_number_unsigned() ||
            r[0].get<uint64_t>() >= r[1].get<uint64_t>() || r[1].get<uint64_t>() > x[0]) {
          return reader.error("range " + r.dump() + " is not inside " + shape_text(x));
        }
        l.ranges.emplace_back(r[0].get<uint64_t>(), r[1].get<uint64_t>());
        out.push_back({r[1].get<uint64_t>() - r[0].get<uint64_t>()});
      }
      break;
    }
    case Type::kInnerProduct:
    case Type::kFusedInnerProduct: {
      auto outputs = reader.positive(layer.value("fc_param", json::object()), "num_output");
      if (!outputs) return outputs.error();
      if (x.empty() || x.size() > 2) return reader.error("needs a 2-D or 3-D input, not " + shape_text(x));
      add_weight("weight", {x.back(), outputs.value()});
      add_weight("bias", {1, outputs.value()});
      HugectrShape y = x;
      y.back() = outputs.value();
      out = {y};
      break;
    }
    case Type::kBatchNorm: {
      if (x.size() != 1) return reader.error("needs a 2-D input, not " + shape_text(x));
      const json param = layer.value("bn_param", json::object());
      const json eps = param.is_object() ? param.value("eps", json(1e-5)) : json();
      if (!eps.is_number() || eps.get<double>() < 0) return reader.error("bn_param.eps must be a number >= 0");
      l.eps = eps.get<double>();
      add_weight("gamma", {x[0]});
      add_weight("beta", {x[0]});
      out = {x};
      break;
    }
    case Type::kMultiCross: {
      const json param = layer.value("mc_param", json::object());
      if (param.value("projection_dim", json(0)) != 0) {
        return reader.error("MultiCross v2 (projection_dim) is not supported");
      }
      auto count = reader.positive(param, "num_layers");
      if (!count) return count.error();
      if (x.size() != 1) return reader.error("needs a 2-D input, not " + shape_text(x));
      for (uint64_t k = 0; k < count.value(); ++k) {
        add_weight("w" + std::to_string(k), {1, x[0]});
        add_weight("b" + std::to_string(k), {1, x[0]});
      }
      out = {x};
      break;
    }
    case Type::kElementwiseMultiply:
    case Type::kAdd:
      if (in.size() < 2) return reader.error("needs at least two bottoms");
      for (const auto& s : in) {
        if (s != x) return reader.error("inputs " + shape_text(x) + " and " + shape_text(s) + " differ");
      }
      out = {x};
      break;
    case Type::kReduceSum: {
      l.axis = integer_or(layer, "axis", 1);
      if (l.axis < 1 || l.axis > x.size()) return reader.error("axis must be 1.." + std::to_string(x.size()));
      HugectrShape y = x;
      y[l.axis - 1] = 1;
      out = {y};
      break;
    }
    case Type::kFmOrder2: {
      auto dim = reader.positive(layer, "out_dim");
      if (!dim) return dim.error();
      if (x.size() != 1 || x[0] % dim.value() != 0) return reader.error(shape_text(x) + " is not slots x out_dim");
      l.out_dim = dim.value();
      out = {{dim.value()}};
      break;
    }
    case Type::kInteraction: {
      if (in.size() != 2 || in[0].size() != 1 || in[1].size() != 2 || in[1][1] != in[0][0]) {
        return reader.error("needs a [batch, d] dense input and a [batch, slots, d] embedding input");
      }
      const uint64_t n = in[1][0] + 1;
      out = {{in[0][0] + n * (n - 1) / 2 + 1}};  // dense, the lower triangle of dot products, one zero of padding
      break;
    }
    case Type::kWeightMultiply: {
      const json dims = layer.value("weight_dims", json());
      if (!dims.is_array() || dims.size() != 2 || !dims[0].is_number_unsigned() || !dims[1].is_number_unsigned() ||
          dims[0].get<uint64_t>() == 0 || dims[1].get<uint64_t>() == 0) {
        return reader.error("needs weight_dims [slots, vec]");
      }
      l.weight_slots = dims[0].get<uint64_t>();
      l.weight_vec = dims[1].get<uint64_t>();
      if (elements(x) != l.weight_slots) {
        return reader.error(shape_text(x) + " does not have weight_dims[0] = " + std::to_string(l.weight_slots) +
                            " values");
      }
      add_weight("weight", {l.weight_slots, l.weight_vec});
      out = {{l.weight_slots * l.weight_vec}};
      break;
    }
  }
  return out;
}
}  // namespace

std::string hugectr_layers_markdown() {
  std::string out = "| layer | |\n|---|---|\n";
  for (const auto& entry : kLayerTypeTable) {
    out += "| " + entry.spelling + " |" + (*entry.note ? std::string(" ") + entry.note + " " : std::string(" ")) + "|\n";
  }
  for (const auto& [loss, head] : kLossHeads) out += "| " + loss + " | the model's output: " + head + " of its input |\n";
  return out;
}

const std::vector<std::string>& supported_hugectr_layers() {
  static const std::vector<std::string> kSupported = [] {
    std::vector<std::string> names;
    for (const auto& entry : kLayerTypeTable) names.push_back(entry.spelling);
    for (const auto& entry : kLossHeads) names.push_back(entry.first);
    return names;
  }();
  return kSupported;
}

Result<HugectrGraph> parse_hugectr_graph(const std::string& text, const std::string& path) {
  auto parsed = parse_strict_json(text, path, "graph");
  if (!parsed) return parsed.error();
  const json& root = parsed.value().value;
  if (!root.is_object() || !root.contains("layers") || !root["layers"].is_array() || root["layers"].empty()) {
    return bad_input(path, "not a HugeCTR graph: no \"layers\" list");
  }
  HugectrGraph g;
  if (root.contains("solver") && root["solver"].is_object() && root["solver"].contains("input_key_type")) {
    const json& key_type = root["solver"]["input_key_type"];
    if (key_type == "I32") g.legacy_key_bytes = 4;
    else if (key_type != "I64") return bad_input(path, "solver.input_key_type must be I32 or I64");
  }
  const json& layers = root["layers"];

  // Data layer: the dense input and the sparse inputs' slot counts
  const json& data = layers[0];
  if (!data.is_object() || data.value("type", "") != "Data") return bad_input(path, "layer 0 is not the Data layer");
  std::map<std::string, uint64_t> sparse_slots;
  {
    LayerReader reader(path, 0, "Data");
    if (!data.contains("dense") || !data["dense"].is_object() || !data["dense"].contains("top") ||
        !data["dense"]["top"].is_string()) {
      return reader.error("needs dense.top and dense.dense_dim");
    }
    auto dim = reader.positive(data["dense"], "dense_dim");
    if (!dim) return dim.error();
    g.dense_input = data["dense"]["top"].get<std::string>();
    g.dense_dim = dim.value();
    g.shapes[g.dense_input] = {g.dense_dim};
    if (!data.contains("sparse") || !data["sparse"].is_array()) return reader.error("needs a sparse list");
    for (const auto& input : data["sparse"]) {
      if (!input.is_object() || !input.contains("top") || !input["top"].is_string()) return reader.error("a sparse input has no top");
      auto slots = reader.positive(input, "slot_num");
      if (!slots) return slots.error();
      sparse_slots[input["top"].get<std::string>()] = slots.value();
    }
  }

  size_t i = 1;
  // Embeddings: the consecutive layers after Data whose type is a sparse embedding
  for (; i < layers.size(); ++i) {
    const json& layer = layers[i];
    const std::string type = layer.is_object() ? layer.value("type", "") : "";
    if (type != "DistributedSlotSparseEmbeddingHash" && type != "LocalizedSlotSparseEmbeddingHash") break;
    LayerReader reader(path, i, type);
    HugectrEmbedding e;
    e.type = type;
    e.localized = type == "LocalizedSlotSparseEmbeddingHash";
    auto bottoms = names(layer.value("bottom", json()));
    auto tops = names(layer.value("top", json()));
    if (bottoms.size() != 1 || tops.size() != 1) return reader.error("needs one bottom and one top");
    e.bottom = bottoms[0];
    e.top = tops[0];
    if (!sparse_slots.count(e.bottom)) return reader.error("bottom \"" + e.bottom + "\" is not a sparse input of the Data layer");
    e.slot_num = sparse_slots[e.bottom];
    const json hparam = layer.value("sparse_embedding_hparam", json::object());
    auto vec = reader.positive(hparam, "embedding_vec_size");
    if (!vec) return vec.error();
    e.vec_size = vec.value();
    const json combiner = hparam.value("combiner", json("sum"));
    if (combiner == "sum" || combiner == 0) e.combiner = "sum";  // legacy graphs: 0 sum, 1 mean
    else if (combiner == "mean" || combiner == 1) e.combiner = "mean";
    else return reader.error("combiner must be sum or mean");
    if (g.shapes.count(e.top)) return reader.error("top \"" + e.top + "\" is defined twice");
    g.shapes[e.top] = {e.slot_num, e.vec_size};
    g.embeddings.push_back(e);
  }
  if (g.embeddings.empty()) return bad_input(path, "the graph has no sparse embedding after the Data layer");

  uint64_t offset = 0;
  for (; i < layers.size(); ++i) {
    const json& layer = layers[i];
    if (!layer.is_object() || !layer.contains("type") || !layer["type"].is_string()) {
      return bad_input(path, "layer " + std::to_string(i) + " has no type");
    }
    HugectrLayer l;
    l.index = i;
    l.type_name = layer["type"].get<std::string>();
    l.bottoms = names(layer.value("bottom", json()));
    l.tops = names(layer.value("top", json()));
    LayerReader reader(path, i, l.type_name);
    const Type* type = layer_type_named(l.type_name);
    const std::string* loss_head = find_named(kLossHeads, l.type_name);
    if (type == nullptr && loss_head == nullptr) {
      std::string list;
      for (const auto& s : supported_hugectr_layers()) list += (list.empty() ? "" : ", ") + s;
      return reader.error("layer type \"" + l.type_name + "\" is not supported (supported: " + list + ")");
    }
    if (l.bottoms.empty()) return reader.error("has no bottom");
    std::vector<HugectrShape> in;
    for (const auto& b : l.bottoms) {
      auto it = g.shapes.find(b);
      if (it == g.shapes.end()) {
        if (loss_head != nullptr && &b != &l.bottoms[0]) continue;  // the label
        return reader.error("bottom \"" + b + "\" is not produced by any earlier layer");
      }
      in.push_back(it->second);
    }
    if (loss_head != nullptr) {
      if (l.tops.size() != 1) return reader.error("needs one top");
      g.outputs.push_back({l.tops[0], l.bottoms[0], *loss_head});
      continue;
    }
    l.type = *type;
    const size_t layer_slot = g.layers.size();
    auto add_weight = [&](const std::string& name, HugectrShape shape) {
      const uint64_t count = elements(shape);
      g.weights.push_back({layer_slot, l.tops.empty() ? name : l.tops[0] + "." + name, std::move(shape), offset, count});
      offset += count;
    };
    auto read = read_dense_layer(l, layer, in, reader, add_weight);
    if (!read) return read.error();
    const std::vector<HugectrShape>& out = read.value();
    if (l.type == Type::kBatchNorm) ++g.batch_norms;
    if (l.tops.size() != out.size()) {
      return reader.error("has " + std::to_string(l.tops.size()) + " tops, expected " + std::to_string(out.size()));
    }
    for (size_t k = 0; k < out.size(); ++k) {
      if (g.shapes.count(l.tops[k])) return reader.error("top \"" + l.tops[k] + "\" is defined twice");
      g.shapes[l.tops[k]] = out[k];
    }
    g.layers.push_back(std::move(l));
  }
  if (g.outputs.empty()) return bad_input(path, "the graph has no loss layer to say what it outputs");
  g.weight_floats = offset;
  return g;
}

Status check_dense_file_size(const HugectrGraph& graph, uint64_t file_bytes, const std::string& path) {
  const uint64_t expected = graph.weight_floats * 4;
  if (file_bytes == expected) return Ok{};
  const int64_t diff = static_cast<int64_t>(file_bytes) - static_cast<int64_t>(expected);
  return bad_input(path, std::to_string(file_bytes) + " bytes, but the graph's " + std::to_string(graph.weights.size()) +
                             " weight tensors need " + std::to_string(expected) + " bytes (" +
                             std::to_string(graph.weight_floats) + " float32): " + std::to_string(diff < 0 ? -diff : diff) +
                             " bytes " + (diff < 0 ? "short" : "too many"));
}

}  // namespace recis_convert
