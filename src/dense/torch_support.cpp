// Shared by the two halves of the dense-export plugin (dense_export.cpp for RecIS, hugectr_network.cpp for
// HugeCTR): errors as exceptions inside the plugin, dtype mapping, small file I/O, running a module, and the
// common end of both exports (freeze, check, write fx_user_model/).
#include "torch_support.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <torch/version.h>

#include "recis_convert/formats/strict_json.h"

namespace recis_convert {
namespace dense {

[[noreturn]] void fail(ExitCode code, const std::string& file, const std::string& message) {
  throw DenseFailure{code, file, message};
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

namespace {

// The first line of torch's message that says something (an ErrorReport starts with an empty line).
std::string first_line(const std::string& text) {
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    if (text.find_first_not_of(" \t\r", begin) < end) return text.substr(begin, end - begin);
    begin = end + 1;
  }
  return text;
}

// What libtorch says when TorchScript needs more than it has (torch/csrc/jit/frontend and serialization).
bool runtime_lacks(const std::string& message) {
  for (const char* sign : {"Unknown builtin op", "Unknown type name", "Unknown function", "Unknown attribute",
                           "maximum supported version"}) {
    if (message.find(sign) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

torch::jit::Module load_torchscript(const std::string& path) {
  // torch::jit::load would block on a FIFO: only a regular file is opened.
  const std::string problem = file_type_problem(path);
  if (!problem.empty()) fail(ExitCode::kBadInput, path, problem);
  try {
    return torch::jit::load(path);
  } catch (const std::exception& e) {
    const c10::Error* error = dynamic_cast<const c10::Error*>(&e);
    const std::string what = error ? error->what_without_backtrace() : e.what();
    if (runtime_lacks(what)) {
      throw RuntimeLacks{"libtorch " TORCH_VERSION " cannot compile it: " + first_line(what)};
    }
    fail(ExitCode::kBadInput, path, "is not a TorchScript file: " + first_line(what));
  }
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

std::vector<std::string> forward_argument_names(torch::jit::Module& module) {
  const auto& arguments = module.get_method("forward").function().getSchema().arguments();
  std::vector<std::string> names;
  for (size_t i = 1; i < arguments.size(); ++i) names.push_back(arguments[i].name());  // 0 is self
  return names;
}

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
  struct stat st {};
  ::fstat(fd.get(), &st);
  return value_or_fail(read_safetensors_header(fd.get(), static_cast<uint64_t>(st.st_size), path));
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

json freeze_check_and_write(torch::jit::Module& module, const std::vector<std::string>& names,
                            const std::vector<torch::Tensor>& inputs, const FrozenOutput& out,
                            const std::vector<std::string>& warnings, std::chrono::steady_clock::time_point start) {
  module.eval();
  const std::vector<torch::Tensor> reference = run(module, inputs);
  std::vector<std::string> output_names = out.outputs;
  if (output_names.empty()) {
    for (size_t i = 0; i < reference.size(); ++i) output_names.push_back("torch_output_" + std::to_string(i));
  } else if (output_names.size() != reference.size()) {
    fail(ExitCode::kBadInput, out.what, "returns " + std::to_string(reference.size()) + " outputs but --outputs names " +
                                                 std::to_string(output_names.size()));
  }
  torch::jit::Module frozen = torch::jit::freeze(module);
  const std::vector<torch::Tensor> check = run(frozen, inputs);
  for (size_t i = 0; i < reference.size(); ++i) {
    const double diff = (reference[i] - check[i]).abs().max().item<double>();
    if (!(diff <= 1e-6)) {
      fail(ExitCode::kInternal, out.what, "the frozen module differs from the eval module on output " +
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
    for (const auto& result : run(frozen, resized)) {
      if (result.dim() == 0 || result.size(0) != batch) {
        fail(ExitCode::kBadInput, out.what, "the frozen module does not keep the batch dimension at batch " +
                                                     std::to_string(batch));
      }
    }
  }

  // 4. files
  if (::mkdir(out.output_dir.c_str(), 0777) != 0 && errno != EEXIST) {
    fail(ExitCode::kOutput, out.output_dir, std::string("cannot create: ") + std::strerror(errno));
  }
  std::vector<std::string> files;
  const std::string dir = out.output_dir + "/";
  frozen.save(dir + out.model_name + ".pt");
  files.push_back(out.model_name + ".pt");

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
  if (!out.mc_path.empty()) {
    write_text(dir + "input_columns.json", read_text(out.mc_path));
    files.push_back("input_columns.json");
  }
  write_text(dir + "graph.txt", frozen.get_method("forward").graph()->toString());
  files.push_back("graph.txt");
  write_sample_io(dir + "sample_io.safetensors", names, inputs, output_names, reference);
  files.push_back("sample_io.safetensors");

  return json{{"code", 0}, {"file", ""}, {"message", ""}, {"warnings", warnings}, {"files", files},
              {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()}};
}

char* to_c_string(const std::string& text) {
  char* out = static_cast<char*>(std::malloc(text.size() + 1));
  if (out) std::memcpy(out, text.c_str(), text.size() + 1);
  return out;
}

json error_response(ExitCode code, const std::string& file, const std::string& message) {
  return json{{"code", static_cast<int>(code)}, {"file", file}, {"message", message}};
}

}  // namespace dense
}  // namespace recis_convert
