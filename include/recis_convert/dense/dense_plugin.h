// The boundary between the torch-free converter and the dense-export plugin (librecis_dense.so), which alone links
// libtorch. Rank 0 dlopens the plugin only when a dense export is asked, so no other process pays libtorch's
// ~160 MB of RSS and ~0.7 s of static initialisation.
//
// The interface is one C function taking and returning JSON text, so the two sides share no C++ ABI:
//   request:  {"dense_model" (filled with the weights, weight_fill.h), "architecture" (the user's file, for
//              messages), "output_dir", "model_name", "outputs": [...], "sample_inputs", "sample_batch", "fg_path",
//              "mc_path"}
//   response: {"code": 0|3|4|1, "file", "message", "warnings": [...], "files": [...], "seconds"[, "not_frozen"]}
//   "not_frozen" (code 0, no files): why this libtorch could not load the module, e.g. an op of a newer torch
// recis_hugectr_dense_v1 builds the network of a HugeCTR graph instead (same response):
//   request:  {"graph", "dense", "ntp", "output_dir", "model_name", "outputs": [...], "sample_batch"}
// and, for `verify`, recis_dense_verify_v1:
//   request:  {"model", "sample_io"}      response: {"code", "file", "message", "problems": [...], "max_diff", "outputs"
//                                                    [, "not_scored": why this libtorch could not load the model]}
// The response is malloc'd by the plugin and released with its free function.
#pragma once

#include <string>
#include <vector>

#include "recis_convert/common/error.h"

extern "C" {
typedef char* (*RecisDenseExportFn)(const char* request_json);
typedef void (*RecisDenseFreeFn)(char* response_json);
}

inline constexpr const char* kDenseExportSymbol = "recis_dense_export_v1";
inline constexpr const char* kDenseFreeSymbol = "recis_dense_free_v1";
inline constexpr const char* kDenseVerifySymbol = "recis_dense_verify_v1";
inline constexpr const char* kHugectrDenseSymbol = "recis_hugectr_dense_v1";
inline constexpr const char* kDensePluginFile = "librecis_dense.so";

namespace recis_convert {

struct DenseRequest {
  std::string dense_model;    // TorchScript of the dense architecture, filled with the checkpoint's weights
  std::string architecture;   // --dense-model as given, for messages
  std::string output_dir;     // <staging>/<export-folder>
  std::string model_name;     // <model-name>.pt
  std::vector<std::string> outputs;  // output names, empty for torch_output_<i>
  std::string sample_inputs;  // safetensors file of named inputs, "" to synthesize from fg + mc
  int sample_batch = 8;
  std::string fg_path;        // "" when not given
  std::string mc_path;
};

struct DenseOutcome {
  std::vector<std::string> warnings;
  std::vector<std::string> files;  // written, relative to output_dir
  double seconds = 0;
  std::string not_frozen;          // why the plugin's libtorch could not load the module ("" when it did)
};

// Loads the plugin (next to the executable, or $RECIS_DENSE_PLUGIN) and runs the dense export.
Result<DenseOutcome> run_dense_export(const DenseRequest& request);

// --source hugectr: the network of a HugeCTR graph, weights from its dense file, BatchNorm statistics from
// <dense>.ntp.json (or `ntp`), built as TorchScript (src/dense/hugectr_network.cpp).
struct HugectrDenseRequest {
  std::string graph;
  std::string dense;
  std::string ntp;  // "" for <dense>.ntp.json
  std::string output_dir;
  std::string model_name;
  std::vector<std::string> outputs;  // empty: the loss layers' tops
  int sample_batch = 8;
};
Result<DenseOutcome> run_hugectr_dense_export(const HugectrDenseRequest& request);

struct DenseCheck {
  std::vector<std::string> problems;  // empty when every output matched
  double max_diff = 0;
  size_t outputs = 0;
  std::string not_scored;  // why the plugin's libtorch could not load the model ("" when it re-scored)
};

// Loads the plugin and re-scores the sample inputs of sample_io.safetensors with the exported model.
Result<DenseCheck> run_dense_verify(const std::string& model, const std::string& sample_io);

}  // namespace recis_convert
