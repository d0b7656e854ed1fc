// Loads librecis_dense.so with dlopen and calls it through its C entry point (see dense_plugin.h).
#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "recis_convert/dense/dense_plugin.h"

namespace recis_convert {
namespace {

std::string plugin_path() {
  if (const char* explicit_path = std::getenv("RECIS_DENSE_PLUGIN")) return explicit_path;
  char exe[PATH_MAX] = {0};
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  std::string dir = n > 0 ? std::string(exe, static_cast<size_t>(n)) : std::string(".");
  dir = dir.substr(0, dir.rfind('/') == std::string::npos ? 0 : dir.rfind('/'));
  return (dir.empty() ? "." : dir) + "/" + kDensePluginFile;
}

// Loads the plugin (a second dlopen returns the loaded one) and calls `symbol`; the parsed response, or its error.
Result<nlohmann::json> call_plugin(const char* symbol, const nlohmann::json& request) {
  const std::string path = plugin_path();
  // RTLD_LOCAL keeps libtorch's symbols to the plugin. The plugin stays loaded until exit: unloading libtorch
  // runs its static destructors, which is not worth the risk in a process about to end.
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    return Error{ExitCode::kInternal, path, std::string("cannot load the dense-export plugin: ") + ::dlerror()};
  }
  auto entry = reinterpret_cast<RecisDenseExportFn>(::dlsym(handle, symbol));
  auto free_fn = reinterpret_cast<RecisDenseFreeFn>(::dlsym(handle, kDenseFreeSymbol));
  if (entry == nullptr || free_fn == nullptr) {
    return Error{ExitCode::kInternal, path, std::string("not a recis-convert dense plugin (no ") + symbol + ")"};
  }
  char* raw = entry(request.dump().c_str());
  if (raw == nullptr) return Error{ExitCode::kInternal, path, "the dense-export plugin returned nothing"};
  const std::string text = raw;
  free_fn(raw);
  try {
    auto response = nlohmann::json::parse(text);
    const int code = response.at("code").get<int>();
    if (code != 0) {
      return Error{static_cast<ExitCode>(code), response.at("file").get<std::string>(),
                   response.at("message").get<std::string>()};
    }
    return response;
  } catch (const nlohmann::json::exception& e) {
    return Error{ExitCode::kInternal, path, std::string("unreadable plugin response: ") + e.what()};
  }
}

}  // namespace

Result<DenseOutcome> outcome_of(Result<nlohmann::json> response) {
  if (!response) return response.error();
  try {
    DenseOutcome outcome;
    outcome.warnings = response.value().at("warnings").get<std::vector<std::string>>();
    outcome.files = response.value().at("files").get<std::vector<std::string>>();
    outcome.seconds = response.value().at("seconds").get<double>();
    outcome.not_frozen = response.value().value("not_frozen", "");
    return outcome;
  } catch (const nlohmann::json::exception& e) {
    return Error{ExitCode::kInternal, plugin_path(), std::string("unreadable plugin response: ") + e.what()};
  }
}

Result<DenseOutcome> run_dense_export(const DenseRequest& r) {
  nlohmann::json request{{"dense_model", r.dense_model}, {"architecture", r.architecture},
                         {"output_dir", r.output_dir},
                         {"model_name", r.model_name},   {"outputs", r.outputs},
                         {"sample_inputs", r.sample_inputs}, {"sample_batch", r.sample_batch},
                         {"fg_path", r.fg_path},         {"mc_path", r.mc_path}};
  return outcome_of(call_plugin(kDenseExportSymbol, request));
}

Result<DenseOutcome> run_hugectr_dense_export(const HugectrDenseRequest& r) {
  nlohmann::json request{{"graph", r.graph},           {"dense", r.dense},          {"ntp", r.ntp},
                         {"output_dir", r.output_dir}, {"model_name", r.model_name}, {"outputs", r.outputs},
                         {"sample_batch", r.sample_batch}};
  return outcome_of(call_plugin(kHugectrDenseSymbol, request));
}

Result<DenseCheck> run_dense_verify(const std::string& model, const std::string& sample_io) {
  auto response = call_plugin(kDenseVerifySymbol, nlohmann::json{{"model", model}, {"sample_io", sample_io}});
  if (!response) return response.error();
  try {
    DenseCheck check;
    check.problems = response.value().at("problems").get<std::vector<std::string>>();
    check.max_diff = response.value().at("max_diff").get<double>();
    check.outputs = response.value().at("outputs").get<size_t>();
    check.not_scored = response.value().value("not_scored", "");
    return check;
  } catch (const nlohmann::json::exception& e) {
    return Error{ExitCode::kInternal, plugin_path(), std::string("unreadable plugin response: ") + e.what()};
  }
}

}  // namespace recis_convert
