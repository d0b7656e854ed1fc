#include "hugectr_forward.h"

#include <cctype>
#include <cmath>
#include <cstdio>

namespace recis_convert {
namespace dense {

std::string TorchScriptNames::of(const std::string& tensor) {
  auto it = ids_.find(tensor);
  if (it != ids_.end()) return it->second;
  std::string id;
  for (char c : tensor) id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  if (id.empty() || std::isdigit(static_cast<unsigned char>(id[0]))) id = "t_" + id;
  while (used_.count(id)) id += "_";
  used_.insert(id);
  return ids_[tensor] = id;
}

std::string float_literal(double v) {
  char text[64];
  std::snprintf(text, sizeof text, "%.9g", v);
  std::string out = text;
  if (out.find_first_of(".eEn") == std::string::npos) out += ".0";  // a float literal in TorchScript
  return out;
}

std::string ForwardWriter::buffer(const std::string& prefix, const torch::Tensor& value) {
  const std::string name = prefix + std::to_string(buffers_++);
  module_.register_buffer(name, value);
  return "self." + name;
}

std::string ForwardWriter::temp(const std::string& prefix) { return prefix + std::to_string(temps_++); }

void ForwardWriter::layer(const HugectrLayer& l, const std::vector<std::string>& p) {
  using Type = HugectrLayerType;
  const std::string x = ids_.of(l.bottoms[0]);
  const std::string y = ids_.of(l.tops[0]);
  auto bottom = [&](size_t k) { return ids_.of(l.bottoms[k]); };
  const HugectrShape& in = g_.tensors.at(l.bottoms[0]).dims;
  const HugectrShape& out = g_.tensors.at(l.tops[0]).dims;
  auto dims_list = [](const HugectrShape& dims) {  // "[-1, d0, d1]": the leading dimension stays -1
    std::string text = "[-1";
    for (uint64_t d : dims) text += ", " + std::to_string(d);
    return text + "]";
  };
  std::ostringstream& code = code_;
  code << "    # " << l.type_name << " " << l.tops[0] << "\n";
  switch (l.type) {
    case Type::kReLU:
      code << "    " << y << " = torch.relu(" << x << ")\n";
      break;
    case Type::kELU:
      code << "    " << y << " = torch.where(" << x << " > 0.0, " << x << ", " << float_literal(l.alpha)
           << " * (torch.exp(" << x << ") - 1.0))\n";
      break;
    case Type::kSigmoid:
      code << "    " << y << " = torch.sigmoid(" << x << ")\n";
      break;
    case Type::kDropout:
      code << "    " << y << " = " << x << "\n";
      break;
    case Type::kPReLUDice: {
      // hugectr2onnx: the mean and variance over the batch (axis 0), E[x^2] - E[x]^2
      const std::string mean = temp("dm"), var = temp("dv"), ps = temp("dp");
      code << "    " << mean << " = torch.mean(" << x << ", [0], True)\n";
      code << "    " << var << " = torch.mean(" << x << " * " << x << ", [0], True) - " << mean << " * " << mean << "\n";
      code << "    " << ps << " = torch.sigmoid((" << x << " - " << mean << ") / torch.sqrt(" << var << " + "
           << float_literal(l.eps) << "))\n";
      code << "    " << y << " = " << x << " * " << ps << " - " << float_literal(l.alpha) << " * (" << x << " * " << ps
           << " - " << x << ")\n";
      break;
    }
    case Type::kReshape:
      if (!l.selected.empty()) {
        const std::string slots = buffer("selected", torch::tensor(std::vector<int64_t>(l.selected.begin(), l.selected.end())));
        code << "    " << y << " = " << x << ".index_select(1, " << slots << ").reshape(" << dims_list(out) << ")\n";
      } else {
        code << "    " << y << " = " << x << ".reshape(" << dims_list(out) << ")\n";
      }
      break;
    case Type::kConcat:
      code << "    " << y << " = torch.cat([";
      for (size_t k = 0; k < l.bottoms.size(); ++k) code << (k ? ", " : "") << bottom(k);
      code << "], " << l.axis << ")\n";
      break;
    case Type::kSlice:
      for (size_t k = 0; k < l.tops.size(); ++k) {
        const auto [a, b] = l.ranges[k];
        code << "    " << ids_.of(l.tops[k]) << " = " << x << ".narrow(" << in.size() << ", " << a << ", " << b - a
             << ")\n";
      }
      break;
    case Type::kInnerProduct:
    case Type::kFusedInnerProduct: {
      const std::string fc = "torch.matmul(" + x + ", self." + p[0] + ") + self." + p[1];
      code << "    " << y << " = " << (l.type == Type::kFusedInnerProduct ? "torch.relu(" + fc + ")" : fc) << "\n";
      break;
    }
    case Type::kMLP: {
      std::string from = x;
      for (size_t k = 0; k < l.mlp.size(); ++k) {
        std::string fc = "torch.matmul(" + from + ", self." + p[2 * k] + ")";
        if (l.mlp[k].bias) fc += " + self." + p[2 * k + 1];
        if (l.mlp[k].relu) fc = "torch.relu(" + fc + ")";
        const std::string to = k + 1 == l.mlp.size() ? y : temp("mlp");
        code << "    " << to << " = " << fc << "\n";
        from = to;
      }
      break;
    }
    case Type::kBatchNorm: {
      std::string names[2];
      for (size_t k = 0; k < 2; ++k) {
        const auto& values = stats_[2 * batch_norm_ + k];
        if (values.size() != in[0]) {
          fail(ExitCode::kBadInput, ntp_path_, "BatchNorm " + std::to_string(batch_norm_) + " has " +
                                                   std::to_string(values.size()) + " values, its layer " + l.tops[0] +
                                                   " has " + std::to_string(in[0]) + " channels");
        }
        names[k] = buffer(k == 0 ? "bn_mean" : "bn_var",
                          torch::from_blob(const_cast<float*>(values.data()), {static_cast<int64_t>(values.size())},
                                           torch::kFloat)
                              .clone());
      }
      code << "    " << y << " = (" << x << " - " << names[0] << ") / torch.sqrt(" << names[1] << " + "
           << float_literal(l.eps) << ") * self." << p[0] << " + self." << p[1] << "\n";
      ++batch_norm_;
      break;
    }
    case Type::kLayerNorm: {
      const std::string mean = temp("lm"), centred = temp("lc");
      code << "    " << mean << " = torch.mean(" << x << ", [-1], True)\n";
      code << "    " << centred << " = " << x << " - " << mean << "\n";
      code << "    " << y << " = " << centred << " / torch.sqrt(torch.mean(" << centred << " * " << centred
           << ", [-1], True) + " << float_literal(l.eps) << ") * self." << p[0] << " + self." << p[1] << "\n";
      break;
    }
    case Type::kMultiCross:
      code << "    " << y << " = " << x << "\n";
      for (size_t k = 0; k + 1 < p.size(); k += 2) {
        code << "    " << y << " = " << x << " * torch.matmul(" << y << ", self." << p[k] << ".t()) + self."
             << p[k + 1] << " + " << y << "\n";
      }
      break;
    case Type::kElementwiseMultiply:
    case Type::kAdd:
    case Type::kSub: {
      const char* op = l.type == Type::kAdd ? " + " : l.type == Type::kSub ? " - " : " * ";
      code << "    " << y << " = " << x;
      for (size_t k = 1; k < l.bottoms.size(); ++k) code << op << bottom(k);
      code << "\n";
      break;
    }
    case Type::kScale:
      // hugectr2onnx: axis 0 concatenates [x.reshape(-1, 1)] factor times on axis 1 (each value repeated in
      // place); axis 1 concatenates x factor times and reshapes to rows of the input's width (each row repeated)
      if (l.scale_rows) {
        code << "    " << y << " = " << x << ".repeat([1, " << l.factor << "]).reshape([-1, " << in[0] << "])\n";
      } else {
        code << "    " << y << " = " << x << ".reshape([-1, 1]).repeat([1, " << l.factor << "]).reshape([-1, "
             << in[0] * l.factor << "])\n";
      }
      break;
    case Type::kReduceSum:
      code << "    " << y << " = torch.sum(" << x << ", [" << l.axis << "], True)\n";
      break;
    case Type::kReduceMean:
      code << "    " << y << " = torch.mean(" << x << ", [" << l.axis << "], True)\n";
      break;
    case Type::kFmOrder2: {
      const std::string v = temp("fm"), s = temp("fs");
      code << "    " << v << " = " << x << ".reshape([-1, " << in[0] / l.out_dim << ", " << l.out_dim << "])\n";
      code << "    " << s << " = torch.sum(" << v << ", [1])\n";
      code << "    " << y << " = 0.5 * (" << s << " * " << s << " - torch.sum(" << v << " * " << v << ", [1]))\n";
      break;
    }
    case Type::kInteraction: {
      const std::string emb = bottom(1);
      const int64_t n = static_cast<int64_t>(g_.tensors.at(l.bottoms[1]).dims[0]) + 1;
      const torch::Tensor lower = torch::tril_indices(n, n, -1);  // (i, j), i > j, row-major: HugeCTR's order
      const std::string rows = buffer("inter_row", lower[0].clone()), cols = buffer("inter_col", lower[1].clone());
      const std::string all = temp("iv"), dots = temp("id");
      code << "    " << all << " = torch.cat([" << x << ".unsqueeze(1), " << emb << "], 1)\n";
      code << "    " << dots << " = torch.bmm(" << all << ", " << all << ".transpose(1, 2))\n";
      code << "    " << y << " = torch.cat([" << x << ", " << dots << "[:, " << rows << ", " << cols << "], " << x
           << ".new_zeros([" << x << ".size(0), 1])], 1)\n";
      break;
    }
    case Type::kWeightMultiply:
      code << "    " << y << " = (" << x << ".reshape([-1, " << l.weight_slots << ", 1]) * self." << p[0]
           << ".unsqueeze(0)).reshape([-1, " << l.weight_slots * l.weight_vec << "])\n";
      break;
    case Type::kFusedReshapeConcat: {
      // the inputs joined on their last dimension; the first T positions are the history (one row each), the last
      // the item
      const std::string joined = temp("frc");
      const uint64_t steps = in[0] - 1;
      code << "    " << joined << " = torch.cat([";
      for (size_t k = 0; k < l.bottoms.size(); ++k) code << (k ? ", " : "") << bottom(k);
      code << "], 2)\n";
      code << "    " << y << " = " << joined << ".narrow(1, 0, " << steps << ").reshape(" << dims_list(out) << ")\n";
      code << "    " << ids_.of(l.tops[1]) << " = " << joined << ".narrow(1, " << steps << ", 1).reshape("
           << dims_list(out) << ")\n";
      break;
    }
    case Type::kMatrixMultiply:
      code << "    " << y << " = torch.matmul(" << x << ", " << bottom(1) << ")\n";
      break;
    case Type::kMultiHeadAttention: {
      // hugectr2onnx: per head, softmax(q k^T / sqrt(d) + (1 - mask) * -10000, last axis) v, the row maximum
      // subtracted first
      const HugectrShape& kv = g_.tensors.at(l.bottoms[1]).dims;
      const uint64_t hidden = in[1], head = hidden / l.heads;
      auto split = [&](const std::string& t, uint64_t seq) {
        return t + ".reshape([-1, " + std::to_string(seq) + ", " + std::to_string(l.heads) + ", " +
               std::to_string(head) + "]).transpose(1, 2)";
      };
      const std::string q = temp("mq"), k = temp("mk"), v = temp("mv"), s = temp("ms");
      code << "    " << q << " = " << split(x, in[0]) << "\n";
      code << "    " << k << " = " << split(bottom(1), kv[0]) << "\n";
      code << "    " << v << " = " << split(bottom(2), kv[0]) << "\n";
      code << "    " << s << " = torch.matmul(" << q << ", " << k << ".transpose(2, 3)) / "
           << float_literal(static_cast<float>(std::sqrt(static_cast<double>(head)))) << "\n";
      if (l.bottoms.size() == 4) code << "    " << s << " = " << s << " + (1.0 - " << bottom(3) << ") * -10000.0\n";
      code << "    " << s << " = torch.softmax(" << s << " - torch.amax(" << s << ", [-1], True), -1)\n";
      code << "    " << y << " = torch.matmul(" << s << ", " << v << ").transpose(1, 2).reshape([-1, " << in[0] << ", "
           << hidden << "])\n";
      break;
    }
    case Type::kSequenceMask: {
      // 1 where both positions are inside their sequence's length: [batch, 1, from, to]
      const std::string from = buffer("seq_from", torch::arange(static_cast<int64_t>(l.sequence_from), torch::kFloat));
      const std::string to = buffer("seq_to", torch::arange(static_cast<int64_t>(l.sequence_to), torch::kFloat));
      code << "    " << y << " = ((" << from << " < " << x << ").float().unsqueeze(2) * (" << to << " < " << bottom(1)
           << ").float().unsqueeze(1)).unsqueeze(1)\n";
      break;
    }
    case Type::kSoftmax: {
      // hugectr2onnx's opset-10 Softmax (axis 1) normalizes over all values of a sample, not only the last axis
      const std::string masked = l.bottoms.size() == 2 ? "(" + x + " + (1.0 - " + bottom(1) + ") * -10000.0)" : x;
      if (in.size() == 1) {
        code << "    " << y << " = torch.softmax(" << masked << ", 1)\n";
      } else {
        code << "    " << y << " = torch.softmax(" << masked << ".reshape([" << x << ".size(0), -1]), 1).reshape("
             << x << ".size())\n";
      }
      break;
    }
  }
}

}  // namespace dense
}  // namespace recis_convert
