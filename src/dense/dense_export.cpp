// librecis_dense.so: the dense export, the only code that includes torch headers (see dense_plugin.h).
//
// 1. load the dense architecture (TorchScript) and fill every parameter and buffer from model.pt, whose keys carry
//    the dense submodule's prefix ("dense_arch.mlp.0.weight"); the prefix is stripped only at the start (RecIS's
//    exporter uses str.replace, which also strips it mid-name);
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
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <torch/csrc/jit/api/module.h>
#include <torch/script.h>

#include "recis_convert/dense_plugin.h"
#include "recis_convert/file_io.h"
#include "recis_convert/safetensors.h"
#include "recis_convert/strict_json.h"
#include "recis_convert/torch_archive.h"

namespace recis_convert {
namespace {

using json = nlohmann::json;

struct DenseFailure {
  ExitCode code;
  std::string file;
  std::string message;
};

[[noreturn]] void fail(ExitCode code, const std::string& file, const std::string& message) {
  throw DenseFailure{code, file, message};
}

template <typename T>
T value_or_fail(Result<T> result) {
  if (!result) fail(result.error().code, result.error().file, result.error().message);
  return std::move(result).value();
}

torch::ScalarType scalar_type(DType dtype, const std::string& file) {
  switch (dtype) {
    case DType::kF32: return torch::kFloat;
    case DType::kF64: return torch::kDouble;
    case DType::kF16: return torch::kHalf;
    case DType::kBF16: return torch::kBFloat16;
    case DType::kI64: return torch::kLong;
    case DType::kI32: return torch::kInt;
    case DType::kI16: return torch::kShort;
    case DType::kI8: return torch::kChar;
    case DType::kU8: return torch::kByte;
    case DType::kBool: return torch::kBool;
    default: fail(ExitCode::kBadInput, file, "a tensor has a dtype libtorch 1.13 cannot hold");
  }
}

std::string torch_dtype_name(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat: return "torch.float32";
    case torch::kDouble: return "torch.float64";
    case torch::kHalf: return "torch.float16";
    case torch::kBFloat16: return "torch.bfloat16";
    case torch::kLong: return "torch.int64";
    case torch::kInt: return "torch.int32";
    case torch::kBool: return "torch.bool";
    default: return std::string("torch.") + c10::toString(type);
  }
}

DType dtype_of(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat: return DType::kF32;
    case torch::kDouble: return DType::kF64;
    case torch::kHalf: return DType::kF16;
    case torch::kBFloat16: return DType::kBF16;
    case torch::kLong: return DType::kI64;
    case torch::kInt: return DType::kI32;
    case torch::kShort: return DType::kI16;
    case torch::kChar: return DType::kI8;
    case torch::kByte: return DType::kU8;
    case torch::kBool: return DType::kBool;
    default: fail(ExitCode::kInternal, "", "unsupported tensor type in the sample");
  }
}

std::string shape_text(c10::IntArrayRef sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) out += (i ? "," : "") + std::to_string(sizes[i]);
  return out + "]";
}

std::string read_text(const std::string& path) {
  return value_or_fail(read_small_file(path, 64u << 20));
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.flush();
  if (!out) fail(ExitCode::kOutput, path, "cannot write");
}

// 1. Parameters and buffers of the module, filled from model.pt.
std::vector<std::string> load_weights(torch::jit::Module& module, const DenseRequest& r) {
  const TorchStateDict state = value_or_fail(read_torch_state_dict(r.state_dict));
  std::map<std::string, const TorchTensor*> by_name;
  for (const auto& t : state.tensors) by_name[t.name] = &t;
  const std::string prefix = r.dense_name.empty() ? "" : r.dense_name + ".";

  std::vector<std::pair<std::string, torch::Tensor>> slots;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) slots.emplace_back(p.name, p.value);
  for (const auto& b : module.named_buffers(/*recurse=*/true)) slots.emplace_back(b.name, b.value);

  std::vector<std::string> problems;
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  for (auto& [name, slot] : slots) {
    const std::string key = prefix + name;
    auto it = by_name.find(key);
    if (it == by_name.end()) {
      problems.push_back("missing " + key);
      continue;
    }
    const TorchTensor& saved = *it->second;
    std::vector<int64_t> shape(saved.shape.begin(), saved.shape.end());
    const torch::ScalarType type = scalar_type(saved.dtype, r.state_dict);
    if (c10::IntArrayRef(shape) != slot.sizes() || type != slot.scalar_type()) {
      problems.push_back(key + " is " + shape_text(shape) + " " + torch_dtype_name(type) + " in model.pt but " +
                         shape_text(slot.sizes()) + " " + torch_dtype_name(slot.scalar_type()) + " in the module");
      continue;
    }
    std::string bytes = value_or_fail(read_tensor_data(state, saved));
    slot.copy_(torch::from_blob(bytes.data(), shape, type).clone());
    used.insert(key);
  }
  if (!problems.empty()) {
    std::string text;
    for (const auto& p : problems) text += (text.empty() ? "" : "; ") + p;
    fail(ExitCode::kBadInput, r.state_dict, "does not fit the dense model: " + text);
  }
  std::vector<std::string> warnings;
  for (const auto& t : state.tensors) {
    if (t.name.compare(0, prefix.size(), prefix) == 0 && !used.count(t.name)) {
      warnings.push_back("model.pt key " + t.name + " is not used by the dense model");
    }
  }
  return warnings;
}

std::vector<std::string> forward_argument_names(torch::jit::Module& module) {
  const auto& arguments = module.get_method("forward").function().getSchema().arguments();
  std::vector<std::string> names;
  for (size_t i = 1; i < arguments.size(); ++i) names.push_back(arguments[i].name());  // 0 is self
  return names;
}

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
// The tensor `name` of an open safetensors file, as a torch tensor.
torch::Tensor read_named_tensor(int fd, const SafetensorsHeader& header, const std::string& name,
                                const std::string& path, const std::string& what) {
  auto it = std::find_if(header.tensors.begin(), header.tensors.end(),
                         [&](const TensorInfo& t) { return t.name == name; });
  if (it == header.tensors.end()) fail(ExitCode::kBadInput, path, "has no tensor \"" + name + "\" " + what);
  std::string bytes(it->nbytes(), '\0');
  value_or_fail(read_exact(fd, header.data_start() + it->begin, bytes.size(), bytes.data(), path,
                           "tensor \"" + name + "\""));
  std::vector<int64_t> shape(it->shape.begin(), it->shape.end());
  return torch::from_blob(bytes.data(), shape, scalar_type(it->dtype, path)).clone();
}

SafetensorsHeader open_safetensors(FileDescriptor& fd, const std::string& path) {
  if (fd.get() < 0) fail(ExitCode::kBadInput, path, "cannot open");
  struct stat st {};
  ::fstat(fd.get(), &st);
  return value_or_fail(read_safetensors_header(fd.get(), static_cast<uint64_t>(st.st_size), path));
}

std::vector<torch::Tensor> sample_inputs(const std::vector<std::string>& names, const DenseRequest& r) {
  std::vector<torch::Tensor> inputs;
  if (!r.sample_inputs.empty()) {
    FileDescriptor fd(::open(r.sample_inputs.c_str(), O_RDONLY | O_CLOEXEC));  // closed however fail() exits
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

std::vector<torch::Tensor> outputs_of(const c10::IValue& value) {
  std::vector<torch::Tensor> out;
  if (value.isTensor()) {
    out.push_back(value.toTensor());
  } else if (value.isTuple()) {
    for (const auto& element : value.toTuple()->elements()) {
      if (!element.isTensor()) fail(ExitCode::kBadInput, "", "the dense model returns a tuple holding a non-tensor");
      out.push_back(element.toTensor());
    }
  } else {
    fail(ExitCode::kBadInput, "", "the dense model returns neither a tensor nor a tuple of tensors");
  }
  return out;
}

std::vector<torch::Tensor> run(torch::jit::Module& module, const std::vector<torch::Tensor>& inputs) {
  std::vector<c10::IValue> stack(inputs.begin(), inputs.end());
  torch::NoGradGuard no_grad;
  return outputs_of(module.forward(stack));
}

void write_sample_io(const std::string& path, const std::vector<std::string>& input_names,
                     const std::vector<torch::Tensor>& inputs, const std::vector<std::string>& output_names,
                     const std::vector<torch::Tensor>& outputs) {
  std::vector<TensorInfo> infos;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    torch::Tensor c = t.contiguous();
    TensorInfo info;
    info.name = name;
    info.dtype = dtype_of(c.scalar_type());
    info.dtype_spelling = info.dtype == DType::kF32 ? "F32" : info.dtype == DType::kF64 ? "F64" : "F16";
    for (int64_t d : c.sizes()) info.shape.push_back(static_cast<uint64_t>(d));
    info.begin = offset;
    info.end = offset + c.numel() * c.element_size();
    offset = info.end;
    infos.push_back(info);
    data.push_back(c);
  };
  for (size_t i = 0; i < inputs.size(); ++i) add("input." + input_names[i], inputs[i]);
  for (size_t i = 0; i < outputs.size(); ++i) add("output." + output_names[i], outputs[i]);
  std::string bytes = serialize_recis_header(infos, std::nullopt);
  for (const auto& t : data) bytes.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  write_text(path, bytes);
}

json export_dense(const DenseRequest& r) {
  const auto start = std::chrono::steady_clock::now();
  torch::jit::Module module;
  try {
    module = torch::jit::load(r.dense_model);
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    fail(ExitCode::kBadInput, r.dense_model, "is not a TorchScript file: " + what.substr(0, what.find('\n')));
  }
  std::vector<std::string> warnings = load_weights(module, r);
  const std::vector<std::string> names = forward_argument_names(module);
  const std::vector<torch::Tensor> inputs = sample_inputs(names, r);

  module.eval();
  const std::vector<torch::Tensor> reference = run(module, inputs);
  std::vector<std::string> output_names = r.outputs;
  if (output_names.empty()) {
    for (size_t i = 0; i < reference.size(); ++i) output_names.push_back("torch_output_" + std::to_string(i));
  } else if (output_names.size() != reference.size()) {
    fail(ExitCode::kBadInput, r.dense_model, "returns " + std::to_string(reference.size()) + " outputs but --outputs names " +
                                                 std::to_string(output_names.size()));
  }
  torch::jit::Module frozen = torch::jit::freeze(module);
  const std::vector<torch::Tensor> check = run(frozen, inputs);
  for (size_t i = 0; i < reference.size(); ++i) {
    const double diff = (reference[i] - check[i]).abs().max().item<double>();
    if (!(diff <= 1e-6)) {
      fail(ExitCode::kInternal, r.dense_model, "the frozen module differs from the eval module on output " +
                                                   output_names[i] + " by " + std::to_string(diff));
    }
  }
  for (int64_t batch : {int64_t{1}, int64_t{4} * inputs.at(0).size(0)}) {
    std::vector<torch::Tensor> resized;
    for (const auto& x : inputs) {
      std::vector<int64_t> repeats(static_cast<size_t>(x.dim()), 1);
      repeats[0] = 4;
      resized.push_back(batch == 1 ? x.narrow(0, 0, 1) : x.repeat(repeats));
    }
    for (const auto& out : run(frozen, resized)) {
      if (out.dim() == 0 || out.size(0) != batch) {
        fail(ExitCode::kBadInput, r.dense_model, "the frozen module does not keep the batch dimension at batch " +
                                                     std::to_string(batch));
      }
    }
  }

  // 4. files
  if (::mkdir(r.output_dir.c_str(), 0777) != 0 && errno != EEXIST) {
    fail(ExitCode::kOutput, r.output_dir, std::string("cannot create: ") + std::strerror(errno));
  }
  std::vector<std::string> files;
  const std::string dir = r.output_dir + "/";
  frozen.save(dir + r.model_name + ".pt");
  files.push_back(r.model_name + ".pt");

  nlohmann::ordered_json output_info;
  output_info["OutputNodes"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < reference.size(); ++i) {
    output_info["OutputNodes"].push_back({{"OutputNodeName", output_names[i]},
                                          {"dtype", torch_dtype_name(reference[i].scalar_type())},
                                          {"shape", reference[i].sizes().vec()}});
  }
  write_text(dir + "output_info.json", output_info.dump(4));
  files.push_back("output_info.json");

  std::vector<size_t> order(names.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return names[a] < names[b]; });
  nlohmann::ordered_json lite = nlohmann::ordered_json::object();
  for (size_t i = 0; i < order.size(); ++i) {
    lite[names[order[i]]] = {{"idx", i}, {"shape", inputs[order[i]].sizes().vec()},
                             {"dtype", torch_dtype_name(inputs[order[i]].scalar_type())}};
  }
  write_text(dir + "inputs_dict_lite.json", lite.dump(4));
  files.push_back("inputs_dict_lite.json");
  write_text(dir + "params_order.json", json(names).dump(4));
  files.push_back("params_order.json");
  if (!r.mc_path.empty()) {
    write_text(dir + "input_columns.json", read_text(r.mc_path));
    files.push_back("input_columns.json");
  }
  write_text(dir + "graph.txt", frozen.get_method("forward").graph()->toString());
  files.push_back("graph.txt");
  write_sample_io(dir + "sample_io.safetensors", names, inputs, output_names, reference);
  files.push_back("sample_io.safetensors");

  return json{{"code", 0}, {"file", ""}, {"message", ""}, {"warnings", warnings}, {"files", files},
              {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()}};
}

// verify: re-scores sample_io.safetensors ("input.<arg>" in forward order, "output.<name>") with the exported
// frozen module; every output must match within 1e-6.
json verify_dense(const std::string& model_path, const std::string& sample_io) {
  torch::jit::Module module;
  try {
    module = torch::jit::load(model_path);
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    fail(ExitCode::kBadInput, model_path, "is not a TorchScript file: " + what.substr(0, what.find('\n')));
  }
  module.eval();
  FileDescriptor fd(::open(sample_io.c_str(), O_RDONLY | O_CLOEXEC));
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

char* to_c_string(const std::string& text) {
  char* out = static_cast<char*>(std::malloc(text.size() + 1));
  if (out) std::memcpy(out, text.c_str(), text.size() + 1);
  return out;
}

json error_response(ExitCode code, const std::string& file, const std::string& message) {
  return json{{"code", static_cast<int>(code)}, {"file", file}, {"message", message}};
}

}  // namespace
}  // namespace recis_convert

namespace recis_convert {
namespace {

// Runs one entry point's work and turns every exception into the JSON error response: nothing may be thrown
// across the C boundary.
template <typename Work>
char* respond(const char* what, Work&& work) {
  json response;
  try {
    response = work();
  } catch (const DenseFailure& f) {
    response = error_response(f.code, f.file, f.message);
  } catch (const c10::Error& e) {
    std::string text = e.what_without_backtrace();
    response = error_response(ExitCode::kBadInput, "", "dense model: " + text.substr(0, text.find('\n')));
  } catch (const std::exception& e) {
    response = error_response(ExitCode::kInternal, "", std::string(what) + ": " + e.what());
  }
  return to_c_string(response.dump());
}

}  // namespace
}  // namespace recis_convert

extern "C" __attribute__((visibility("default"))) char* recis_dense_export_v1(const char* request_json) {
  using namespace recis_convert;
  return respond("dense export", [request_json] {
    const json j = json::parse(request_json);
    DenseRequest r;
    r.dense_model = j.at("dense_model").get<std::string>();
    r.state_dict = j.at("state_dict").get<std::string>();
    r.dense_name = j.at("dense_name").get<std::string>();
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
  return respond("dense verify", [request_json] {
    const json j = json::parse(request_json);
    return verify_dense(j.at("model").get<std::string>(), j.at("sample_io").get<std::string>());
  });
}

extern "C" __attribute__((visibility("default"))) void recis_dense_free_v1(char* response_json) {
  std::free(response_json);
}
