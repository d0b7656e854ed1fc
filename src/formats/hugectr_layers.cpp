#include "recis_convert/formats/hugectr_layers.h"

#include <cmath>
#include <numeric>

namespace recis_convert {
namespace {

using json = nlohmann::json;
using Type = HugectrLayerType;

// An optional non-negative integer parameter (json(1) literals are signed in nlohmann, so not is_number_unsigned).
uint64_t integer_or(const json& layer, const char* key, uint64_t fallback) {
  const json value = layer.value(key, json(fallback));
  return value.is_number_integer() && value.get<int64_t>() >= 0 ? value.get<uint64_t>() : 0;
}

// A whole number given as 10 or 10.0 (HugeCTR writes Scale's factor as a float), or 0.
uint64_t whole_number(const json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_float() && value.get<double>() >= 1 && value.get<double>() <= 1e9 &&
      std::floor(value.get<double>()) == value.get<double>()) {
    return static_cast<uint64_t>(value.get<double>());
  }
  return 0;
}

const json& param_object(const json& layer, const char* key) {
  static const json kEmpty = json::object();
  return layer.contains(key) && layer[key].is_object() ? layer[key] : kEmpty;
}

}  // namespace

uint64_t element_count(const HugectrShape& shape) {
  return std::accumulate(shape.begin(), shape.end(), uint64_t{1}, [](uint64_t a, uint64_t b) { return a * b; });
}

Result<uint64_t> HugectrLayerReader::positive(const json& object, const char* key) const {
  if (!object.is_object() || !object.contains(key) || !object[key].is_number_unsigned() ||
      object[key].get<uint64_t>() == 0 || object[key].get<uint64_t>() > (1ull << 40)) {
    return error(std::string("needs a positive integer \"") + key + "\"");
  }
  return object[key].get<uint64_t>();
}

Result<double> HugectrLayerReader::non_negative(const json& object, const char* key, double fallback) const {
  if (!object.is_object() || !object.contains(key)) return fallback;
  if (!object[key].is_number() || !(object[key].get<double>() >= 0)) {
    return error(std::string("\"") + key + "\" must be a number >= 0");
  }
  return object[key].get<double>();
}

std::string tensor_text(const HugectrTensor& t) {
  std::string out = t.rows_per_sample == 1 ? "[batch" : "[batch x " + std::to_string(t.rows_per_sample);
  for (uint64_t d : t.dims) out += ", " + std::to_string(d);
  return out + "]";
}

// The graph's spelling of each supported dense layer type: the only place layer types are strings. The notes are
// README's (hugectr_layers_markdown), so the list there and in the error message cannot drift from this table.
const std::vector<HugectrLayerTypeEntry>& hugectr_layer_types() {
  static const std::vector<HugectrLayerTypeEntry> kTable = {
      {"Reshape", Type::kReshape, "`leading_dim`, `time_step`, or `selected` slots; may fold rows into or out of "
                                  "the batch dimension (DIN's `[batch x T, 1]` -> `[batch, T]`)"},
      {"Concat", Type::kConcat, "`axis` (default 1; 2 joins the last dimension of 3-D inputs)"},
      {"Slice", Type::kSlice, "`ranges` of the last dimension, one top each"},
      {"InnerProduct", Type::kInnerProduct, "2-D or 3-D input; weight `[in, out]`, bias `[1, out]`"},
      {"FusedInnerProduct", Type::kFusedInnerProduct, "an InnerProduct with its ReLU"},
      {"MLP", Type::kMLP, "`mlp_param.num_outputs`, `activation`/`activations` (Relu or None), `use_bias`/`biases`; "
                          "weight and bias of every stage are in the dense file"},
      {"ReLU", Type::kReLU, ""},
      {"ELU", Type::kELU, "`elu_param.alpha`"},
      {"Sigmoid", Type::kSigmoid, ""},
      {"PReLU_Dice", Type::kPReLUDice, "`prelu_dice_param` alpha, eps; mean and variance over the batch, as "
                                       "hugectr2onnx computes them"},
      {"Softmax", Type::kSoftmax, "over all values of a sample (hugectr2onnx's opset-10 Softmax); a second bottom is "
                                  "a mask"},
      {"Dropout", Type::kDropout, "identity at inference"},
      {"BatchNorm", Type::kBatchNorm, "inference form; gamma, beta from the dense file, running statistics from "
                                      "`<dense>.ntp.json`"},
      {"LayerNorm", Type::kLayerNorm, "`ln_param.eps`; over the last dimension; gamma, beta from the dense file"},
      {"MultiCross", Type::kMultiCross, "DCN v1 (not v2's `projection_dim`); w, b per layer"},
      {"ElementwiseMultiply", Type::kElementwiseMultiply, ""},
      {"Add", Type::kAdd, ""},
      {"Sub", Type::kSub, "two bottoms"},
      {"Scale", Type::kScale, "`scale_param`: axis 0 repeats each value, axis 1 each row, `factor` times"},
      {"ReduceSum", Type::kReduceSum, "keeps the reduced dimension, as HugeCTR does"},
      {"ReduceMean", Type::kReduceMean, "keeps the reduced dimension"},
      {"FmOrder2", Type::kFmOrder2, ""},
      {"Interaction", Type::kInteraction, "DLRM: dense, the lower triangle of dot products in row order, one zero of "
                                          "padding, as HugeCTR's kernel writes it"},
      {"WeightMultiply", Type::kWeightMultiply, "W `weight_dims`"},
      {"FusedReshapeConcat", Type::kFusedReshapeConcat, "DIN: `[batch, T + 1, d_i]` inputs -> the history "
                                                        "`[batch x T, sum d_i]` and the item `[batch, sum d_i]`"},
      {"MatrixMultiply", Type::kMatrixMultiply, "batched: 3-D x 3-D or 4-D x 4-D"},
      {"MultiHeadAttention", Type::kMultiHeadAttention, "query, key, value `[batch, seq, hidden]` and an optional "
                                                        "mask; `num_attention_heads` divides hidden"},
      {"SequenceMask", Type::kSequenceMask, "from two `[batch, 1]` lengths: `[batch, 1, from, to]` of 0/1"}};
  return kTable;
}

const HugectrLayerType* hugectr_layer_type_named(const std::string& spelling) {
  for (const auto& entry : hugectr_layer_types()) {
    if (entry.spelling == spelling) return &entry.type;
  }
  return nullptr;
}

Result<std::vector<HugectrTensor>> read_dense_layer(HugectrLayer& l, const json& layer,
                                                   const std::vector<HugectrTensor>& in,
                                                   const HugectrLayerReader& reader, const HugectrAddWeight& add_weight) {
  const HugectrTensor& x = in[0];
  auto like_x = [&](HugectrShape dims) { return HugectrTensor{x.rows_per_sample, std::move(dims)}; };
  auto bottoms = [&](size_t least, size_t most) -> Status {
    if (in.size() >= least && in.size() <= most) return Ok{};
    return reader.error(least == most ? "needs " + std::to_string(least) + " bottoms"
                                      : "needs " + std::to_string(least) + " to " + std::to_string(most) + " bottoms");
  };
  auto all_alike = [&]() -> Status {
    for (const auto& s : in) {
      if (!(s == x)) return reader.error("inputs " + tensor_text(x) + " and " + tensor_text(s) + " differ");
    }
    return Ok{};
  };
  std::vector<HugectrTensor> out;
  switch (l.type) {
    case Type::kReLU:
    case Type::kSigmoid:
    case Type::kDropout:
      out = {x};
      break;
    case Type::kELU: {
      auto alpha = reader.non_negative(param_object(layer, "elu_param"), "alpha", 1.0);
      if (!alpha) return alpha.error();
      l.alpha = alpha.value();
      out = {x};
      break;
    }
    case Type::kPReLUDice: {
      const json& param = param_object(layer, "prelu_dice_param");
      auto alpha = reader.non_negative(param, "alpha", 1.0);
      if (!alpha) return alpha.error();
      auto eps = reader.non_negative(param, "eps", 1e-5);
      if (!eps) return eps.error();
      l.alpha = alpha.value();
      l.eps = eps.value();
      out = {x};
      break;
    }
    case Type::kReshape: {
      if (layer.contains("shape")) return reader.error("Reshape with \"shape\" is not supported (hugectr2onnx reads "
                                                       "leading_dim and time_step)");
      uint64_t leading = 0, steps = 0;
      if (layer.contains("selected")) {
        const json& selected = layer["selected"];
        if (x.dims.size() != 2 || x.rows_per_sample != 1) {
          return reader.error("selects slots of a [batch, slots, vec] input, not " + tensor_text(x));
        }
        if (!selected.is_array() || selected.empty()) return reader.error("\"selected\" must list slots");
        for (const auto& s : selected) {
          if (!s.is_number_unsigned() || s.get<uint64_t>() >= x.dims[0]) {
            return reader.error("selected slot " + s.dump() + " is not a slot of " + tensor_text(x));
          }
          l.selected.push_back(s.get<uint64_t>());
        }
        leading = l.selected.size() * x.dims[1];
        out = {{1, {leading}}};
        break;
      }
      auto dim = reader.positive(layer, "leading_dim");
      if (!dim) return dim.error();
      leading = dim.value();
      steps = integer_or(layer, "time_step", 0);
      // The values of one sample become whole rows of the new shape, or whole samples become one row: either way
      // the leading dimension stays a whole multiple of the batch (HugeCTR's Reshape may change it, as DIN's does).
      const uint64_t values = x.rows_per_sample * element_count(x.dims);
      const uint64_t row = steps > 0 ? steps * leading : leading;
      if (values % row != 0) {
        return reader.error("reshaping " + tensor_text(x) + " (" + std::to_string(values) + " values per sample) to " +
                            (steps > 0 ? "time_step " + std::to_string(steps) + " x " : std::string()) +
                            "leading_dim " + std::to_string(leading) + " would not keep whole samples");
      }
      out = {{values / row, steps > 0 ? HugectrShape{steps, leading} : HugectrShape{leading}}};
      break;
    }
    case Type::kConcat: {
      l.axis = integer_or(layer, "axis", 1);
      const uint64_t axis = l.axis;
      if (axis < 1 || axis > x.dims.size()) return reader.error("axis must be 1.." + std::to_string(x.dims.size()));
      HugectrShape joined = x.dims;
      joined[axis - 1] = 0;
      for (const auto& s : in) {
        for (size_t d = 0; d < s.dims.size(); ++d) {
          if (s.dims.size() != x.dims.size() || (d != axis - 1 && s.dims[d] != x.dims[d])) {
            return reader.error("inputs " + tensor_text(x) + " and " + tensor_text(s) +
                                " cannot be concatenated on axis " + std::to_string(axis));
          }
        }
        joined[axis - 1] += s.dims[axis - 1];
      }
      out = {like_x(joined)};
      break;
    }
    case Type::kSlice: {
      const json ranges = layer.value("ranges", json());
      if (!ranges.is_array() || ranges.size() != l.tops.size()) {
        return reader.error("needs one [begin, end] range per top");
      }
      const uint64_t last = x.dims.back();
      for (const auto& r : ranges) {
        if (!r.is_array() || r.size() != 2 || !r[0].is_number_unsigned() || !r[1].is_number_unsigned() ||
            r[0].get<uint64_t>() >= r[1].get<uint64_t>() || r[1].get<uint64_t>() > last) {
          return reader.error("range " + r.dump() + " is not inside the last dimension of " + tensor_text(x));
        }
        l.ranges.emplace_back(r[0].get<uint64_t>(), r[1].get<uint64_t>());
        HugectrShape dims = x.dims;
        dims.back() = r[1].get<uint64_t>() - r[0].get<uint64_t>();
        out.push_back(like_x(dims));
      }
      break;
    }
    case Type::kInnerProduct:
    case Type::kFusedInnerProduct: {
      auto outputs = reader.positive(param_object(layer, "fc_param"), "num_output");
      if (!outputs) return outputs.error();
      if (x.dims.empty() || x.dims.size() > 2) return reader.error("needs a 2-D or 3-D input, not " + tensor_text(x));
      add_weight("weight", {x.dims.back(), outputs.value()});
      add_weight("bias", {1, outputs.value()});
      HugectrShape y = x.dims;
      y.back() = outputs.value();
      out = {like_x(y)};
      break;
    }
    case Type::kMLP: {
      const json& param = param_object(layer, "mlp_param");
      const json sizes = param.value("num_outputs", json());
      if (!sizes.is_array() || sizes.empty()) return reader.error("needs mlp_param.num_outputs, a list of sizes");
      if (x.dims.size() != 1) return reader.error("needs a 2-D input, not " + tensor_text(x));
      // activations and biases override activation and use_bias (the layer book)
      json activations = json::array_t(sizes.size(), param.value("activation", json("Relu")));
      json biases = json::array_t(sizes.size(), param.value("use_bias", json(true)));
      if (param.contains("activations")) activations = param["activations"];
      if (param.contains("biases")) biases = param["biases"];
      if (!activations.is_array() || activations.size() != sizes.size() || !biases.is_array() ||
          biases.size() != sizes.size()) {
        return reader.error("mlp_param.activations and biases need one entry per num_outputs entry");
      }
      uint64_t width = x.dims[0];
      for (size_t k = 0; k < sizes.size(); ++k) {
        const uint64_t size = sizes[k].is_number_unsigned() ? sizes[k].get<uint64_t>() : 0;
        if (size == 0 || size > (1ull << 40)) return reader.error("num_outputs " + sizes[k].dump() + " is not a size");
        if (activations[k] != "Relu" && activations[k] != "None") {
          return reader.error("activation " + activations[k].dump() + " is not Relu or None");
        }
        if (!biases[k].is_boolean()) return reader.error("use_bias and biases must be true or false");
        l.mlp.push_back({size, activations[k] == "Relu", biases[k].get<bool>()});
        add_weight("weight" + std::to_string(k), {width, size});
        add_weight("bias" + std::to_string(k), {1, size});
        width = size;
      }
      out = {like_x({width})};
      break;
    }
    case Type::kBatchNorm: {
      if (x.dims.size() != 1) return reader.error("needs a 2-D input, not " + tensor_text(x));
      const json param = layer.value("bn_param", json::object());
      const json eps = param.is_object() ? param.value("eps", json(1e-5)) : json();
      if (!eps.is_number() || eps.get<double>() < 0) return reader.error("bn_param.eps must be a number >= 0");
      l.eps = eps.get<double>();
      add_weight("gamma", {x.dims[0]});
      add_weight("beta", {x.dims[0]});
      out = {x};
      break;
    }
    case Type::kLayerNorm: {
      auto eps = reader.non_negative(param_object(layer, "ln_param"), "eps", 1e-5);
      if (!eps) return eps.error();
      l.eps = eps.value();
      add_weight("gamma", {x.dims.back()});
      add_weight("beta", {x.dims.back()});
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
      if (x.dims.size() != 1) return reader.error("needs a 2-D input, not " + tensor_text(x));
      for (uint64_t k = 0; k < count.value(); ++k) {
        add_weight("w" + std::to_string(k), {1, x.dims[0]});
        add_weight("b" + std::to_string(k), {1, x.dims[0]});
      }
      out = {x};
      break;
    }
    case Type::kElementwiseMultiply:
    case Type::kAdd:
      if (in.size() < 2) return reader.error("needs at least two bottoms");
      if (auto alike = all_alike(); !alike) return alike.error();
      out = {x};
      break;
    case Type::kSub:
      if (auto count = bottoms(2, 2); !count) return count.error();
      if (auto alike = all_alike(); !alike) return alike.error();
      out = {x};
      break;
    case Type::kScale: {
      const json& param = param_object(layer, "scale_param");
      const json axis = param.value("axis", json());
      l.factor = whole_number(param.value("factor", json()));
      if (!(axis == 0 || axis == 1) || l.factor == 0) {
        return reader.error("needs scale_param.axis 0 or 1 and a whole positive scale_param.factor");
      }
      if (x.dims.size() != 1) return reader.error("scales a 2-D input, not " + tensor_text(x));
      l.scale_rows = axis == 1;
      out = {l.scale_rows ? HugectrTensor{x.rows_per_sample * l.factor, x.dims}
                          : like_x({x.dims[0] * l.factor})};
      break;
    }
    case Type::kReduceSum:
    case Type::kReduceMean: {
      l.axis = integer_or(layer, "axis", 1);
      if (l.axis < 1 || l.axis > x.dims.size()) return reader.error("axis must be 1.." + std::to_string(x.dims.size()));
      HugectrShape y = x.dims;
      y[l.axis - 1] = 1;
      out = {like_x(y)};
      break;
    }
    case Type::kFmOrder2: {
      auto dim = reader.positive(layer, "out_dim");
      if (!dim) return dim.error();
      if (x.dims.size() != 1 || x.dims[0] % dim.value() != 0) {
        return reader.error(tensor_text(x) + " is not slots x out_dim");
      }
      l.out_dim = dim.value();
      out = {like_x({dim.value()})};
      break;
    }
    case Type::kInteraction: {
      if (in.size() != 2 || in[0].dims.size() != 1 || in[1].dims.size() != 2 || in[1].dims[1] != in[0].dims[0]) {
        return reader.error("needs a [batch, d] dense input and a [batch, slots, d] embedding input");
      }
      const uint64_t n = in[1].dims[0] + 1;
      out = {like_x({in[0].dims[0] + n * (n - 1) / 2 + 1})};  // dense, the lower triangle of dots, one zero
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
      if (element_count(x.dims) != l.weight_slots) {
        return reader.error(tensor_text(x) + " does not have weight_dims[0] = " + std::to_string(l.weight_slots) +
                            " values");
      }
      add_weight("weight", {l.weight_slots, l.weight_vec});
      out = {like_x({l.weight_slots * l.weight_vec})};
      break;
    }
    case Type::kFusedReshapeConcat: {
      if (l.tops.size() != 2) return reader.error("needs two tops: the history and the item");
      uint64_t width = 0;
      for (const auto& s : in) {
        if (s.rows_per_sample != 1 || s.dims.size() != 2 || s.dims[0] != x.dims[0] || s.dims[0] < 2) {
          return reader.error("needs [batch, T + 1, d] inputs with the same T + 1 >= 2, not " + tensor_text(s));
        }
        width += s.dims[1];
      }
      out = {{x.dims[0] - 1, {width}}, {1, {width}}};
      break;
    }
    case Type::kMatrixMultiply: {
      if (auto count = bottoms(2, 2); !count) return count.error();
      const HugectrShape& a = in[0].dims;
      const HugectrShape& b = in[1].dims;
      if (a.size() < 2 || a.size() > 3 || b.size() != a.size() || a.back() != b[b.size() - 2] ||
          !std::equal(a.begin(), a.end() - 2, b.begin())) {
        return reader.error(tensor_text(in[0]) + " x " + tensor_text(in[1]) +
                            " is not a batched matrix product (3-D x 3-D or 4-D x 4-D)");
      }
      HugectrShape y(a.begin(), a.end() - 1);
      y.push_back(b.back());
      out = {like_x(y)};
      break;
    }
    case Type::kMultiHeadAttention: {
      if (auto count = bottoms(3, 4); !count) return count.error();
      auto heads = layer.contains("num_attention_heads") ? reader.positive(layer, "num_attention_heads")
                                                         : Result<uint64_t>(uint64_t{1});
      if (!heads) return heads.error();
      l.heads = heads.value();
      const HugectrShape& q = in[0].dims;
      const HugectrShape& k = in[1].dims;
      if (q.size() != 2 || k.size() != 2 || !(in[2].dims == k) || k[1] != q[1]) {
        return reader.error("needs query [batch, from, hidden] and key, value [batch, to, hidden], not " +
                            tensor_text(in[0]) + ", " + tensor_text(in[1]) + ", " + tensor_text(in[2]));
      }
      if (q[1] % l.heads != 0) {
        return reader.error("hidden size " + std::to_string(q[1]) + " is not divisible by num_attention_heads " +
                            std::to_string(l.heads));
      }
      if (in.size() == 4 && !(in[3].dims == HugectrShape{1, q[0], k[0]})) {
        return reader.error("its mask is " + tensor_text(in[3]) + ", not [batch, 1, " + std::to_string(q[0]) + ", " +
                            std::to_string(k[0]) + "]");
      }
      out = {x};
      break;
    }
    case Type::kSequenceMask: {
      if (auto count = bottoms(2, 2); !count) return count.error();
      for (const auto& s : in) {
        if (!(s.dims == HugectrShape{1})) return reader.error("needs two [batch, 1] lengths, not " + tensor_text(s));
      }
      auto from = reader.positive(layer, "max_sequence_len_from");
      if (!from) return from.error();
      auto to = reader.positive(layer, "max_sequence_len_to");
      if (!to) return to.error();
      l.sequence_from = from.value();
      l.sequence_to = to.value();
      out = {like_x({1, l.sequence_from, l.sequence_to})};
      break;
    }
    case Type::kSoftmax:
      if (auto count = bottoms(1, 2); !count) return count.error();
      if (in.size() == 2) {  // a mask that broadcasts over the heads: [batch, heads, from, to] and [batch, 1, from, to]
        const HugectrShape& s = x.dims;
        if (s.size() != 3 || !(in[1].dims == HugectrShape{1, s[1], s[2]})) {
          return reader.error("masks a [batch, heads, from, to] input with [batch, 1, from, to], not " +
                              tensor_text(x) + " with " + tensor_text(in[1]));
        }
      }
      out = {x};
      break;
  }
  return out;
}

}  // namespace recis_convert
