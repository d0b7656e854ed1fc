#include "recis_convert/formats/hugectr_graph.h"


#include "recis_convert/formats/hugectr_layers.h"
#include "recis_convert/formats/strict_json.h"

namespace recis_convert {
namespace {

using json = nlohmann::json;
using Type = HugectrLayerType;

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

}  // namespace

std::string hugectr_layers_markdown() {
  std::string out = "| layer | |\n|---|---|\n";
  for (const auto& entry : hugectr_layer_types()) {
    out += "| " + entry.spelling + " |" + (*entry.note ? std::string(" ") + entry.note + " " : std::string(" ")) + "|\n";
  }
  for (const auto& [loss, head] : kLossHeads) out += "| " + loss + " | the model's output: " + head + " of its input |\n";
  return out;
}

const std::vector<std::string>& supported_hugectr_layers() {
  static const std::vector<std::string> kSupported = [] {
    std::vector<std::string> names;
    for (const auto& entry : hugectr_layer_types()) names.push_back(entry.spelling);
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
    HugectrLayerReader reader(path, 0, "Data");
    if (!data.contains("dense") || !data["dense"].is_object() || !data["dense"].contains("top") ||
        !data["dense"]["top"].is_string()) {
      return reader.error("needs dense.top and dense.dense_dim");
    }
    const json& dense_dim = data["dense"].value("dense_dim", json());
    if (!dense_dim.is_number_unsigned() || dense_dim.get<uint64_t>() > (1ull << 40)) {
      return reader.error("needs dense.top and dense.dense_dim");
    }
    g.dense_input = data["dense"]["top"].get<std::string>();
    g.dense_dim = dense_dim.get<uint64_t>();
    if (g.dense_dim > 0) g.tensors[g.dense_input] = {1, {g.dense_dim}};  // 0: no dense input (NCF, DIN, MMoE)
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
    HugectrLayerReader reader(path, i, type);
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
    if (g.tensors.count(e.top)) return reader.error("top \"" + e.top + "\" is defined twice");
    g.tensors[e.top] = {1, {e.slot_num, e.vec_size}};
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
    HugectrLayerReader reader(path, i, l.type_name);
    const Type* type = hugectr_layer_type_named(l.type_name);
    const std::string* loss_head = find_named(kLossHeads, l.type_name);
    if (type == nullptr && loss_head == nullptr) {
      std::string list;
      for (const auto& s : supported_hugectr_layers()) list += (list.empty() ? "" : ", ") + s;
      return reader.error("layer type \"" + l.type_name + "\" is not supported (supported: " + list + ")");
    }
    if (l.bottoms.empty()) return reader.error("has no bottom");
    std::vector<HugectrTensor> in;
    for (const auto& b : l.bottoms) {
      auto it = g.tensors.find(b);
      if (it == g.tensors.end()) {
        if (loss_head != nullptr && &b != &l.bottoms[0]) continue;  // the label
        return reader.error("bottom \"" + b + "\" is not produced by any earlier layer");
      }
      if (it->second.rows_per_sample != (in.empty() ? it->second : in[0]).rows_per_sample) {
        return reader.error("its bottoms " + tensor_text(in[0]) + " and " + tensor_text(it->second) +
                            " have different leading dimensions");
      }
      in.push_back(it->second);
    }
    if (loss_head != nullptr) {
      if (l.tops.size() != 1) return reader.error("needs one top");
      if (in[0].rows_per_sample != 1) {
        return reader.error("its input " + tensor_text(in[0]) + " does not have one row per sample");
      }
      g.outputs.push_back({l.tops[0], l.bottoms[0], *loss_head});
      continue;
    }
    l.type = *type;
    const size_t layer_slot = g.layers.size();
    auto add_weight = [&](const std::string& name, HugectrShape shape) {
      const uint64_t count = element_count(shape);
      g.weights.push_back({layer_slot, l.tops.empty() ? name : l.tops[0] + "." + name, std::move(shape), offset, count});
      offset += count;
    };
    auto read = read_dense_layer(l, layer, in, reader, add_weight);
    if (!read) return read.error();
    const std::vector<HugectrTensor>& out = read.value();
    if (l.type == Type::kBatchNorm) ++g.batch_norms;
    if (l.tops.size() != out.size()) {
      return reader.error("has " + std::to_string(l.tops.size()) + " tops, expected " + std::to_string(out.size()));
    }
    for (size_t k = 0; k < out.size(); ++k) {
      if (g.tensors.count(l.tops[k])) return reader.error("top \"" + l.tops[k] + "\" is defined twice");
      g.tensors[l.tops[k]] = out[k];
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
