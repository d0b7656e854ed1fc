// Shared by the two halves of the dense-export plugin (see torch_support.cpp). Plugin-internal: includes torch.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <torch/script.h>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/safetensors.h"

namespace recis_convert {
namespace dense {

using json = nlohmann::json;

// Inside the plugin failures are exceptions (torch reports its own by throwing); respond() turns each into the
// JSON error response at the C boundary.
struct DenseFailure {
  ExitCode code;
  std::string file;
  std::string message;
};

[[noreturn]] void fail(ExitCode code, const std::string& file, const std::string& message);

template <typename T>
T value_or_fail(Result<T> result) {
  if (!result) fail(result.error().code, result.error().file, result.error().message);
  return std::move(result).value();
}

torch::ScalarType scalar_type(DType dtype, const std::string& file);
std::string torch_dtype_name(torch::ScalarType type);
DType dtype_of(torch::ScalarType type);
std::string shape_text(c10::IntArrayRef sizes);
std::string read_text(const std::string& path);
// Thrown by load_torchscript for TorchScript that this libtorch cannot compile: an op, a type or a file format
// version it does not know, as in a module scripted by a newer torch. Not bad input: the archive is fine, the
// runtime is too old for it.
struct RuntimeLacks {
  std::string reason;  // one line, e.g. "libtorch 1.13.1 does not know aten::scaled_dot_product_attention"
};

// A TorchScript file (a regular file only). RuntimeLacks as above; anything else fails as bad input naming it.
torch::jit::Module load_torchscript(const std::string& path);
void write_text(const std::string& path, const std::string& text);

std::vector<std::string> forward_argument_names(torch::jit::Module& module);
torch::Tensor read_named_tensor(int fd, const SafetensorsHeader& header, const std::string& name,
                                const std::string& path, const std::string& what);
SafetensorsHeader open_safetensors(FileDescriptor& fd, const std::string& path);
std::vector<torch::Tensor> outputs_of(const c10::IValue& value);
std::vector<torch::Tensor> run(torch::jit::Module& module, const std::vector<torch::Tensor>& inputs);
void write_sample_io(const std::string& path, const std::vector<std::string>& input_names,
                     const std::vector<torch::Tensor>& inputs, const std::vector<std::string>& output_names,
                     const std::vector<torch::Tensor>& outputs);

// Where and how the frozen module is written.
struct FrozenOutput {
  std::string what;        // the model's source, for error messages
  std::string output_dir;  // <staging>/<export-folder>
  std::string model_name;  // <model-name>.pt
  std::vector<std::string> outputs;  // output names, empty for torch_output_<i>
  std::string mc_path;     // shipped as input_columns.json when given
};

// Runs the module in eval mode, freezes it, requires the frozen module to agree (max |diff| <= 1e-6) and to run
// at batch 1 and 4x the sample batch, then writes <model>.pt, output_info.json, inputs_dict_lite.json,
// params_order.json, [input_columns.json,] graph.txt and sample_io.safetensors. The success response.
json freeze_check_and_write(torch::jit::Module& module, const std::vector<std::string>& names,
                            const std::vector<torch::Tensor>& inputs, const FrozenOutput& out,
                            const std::vector<std::string>& warnings, std::chrono::steady_clock::time_point start);

char* to_c_string(const std::string& text);
json error_response(ExitCode code, const std::string& file, const std::string& message);

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

}  // namespace dense
}  // namespace recis_convert
