#include "recis_convert/dense/dense_stage.h"

#include <sys/stat.h>

#include <chrono>

#include "recis_convert/common/fault_injection.h"
#include "recis_convert/dense/dense_plugin.h"
#include "recis_convert/metadata/export_files.h"

namespace recis_convert {
namespace {

using Clock = std::chrono::steady_clock;

// The files a dense export wrote into <staging>/<export-folder>, checksummed for the manifest.
Result<std::vector<ExtraFile>> describe_dense_files(const DenseOutcome& outcome, const std::string& output_dir,
                                                    const std::string& folder) {
  std::vector<ExtraFile> described;
  for (const auto& name : outcome.files) {
    auto file = describe_written_file(output_dir + "/" + name, folder + "/" + name);
    if (!file) return file.error();
    described.push_back(file.value());
  }
  return described;
}

// --source hugectr: the graph's network as TorchScript (the plugin builds it).
Result<std::vector<ExtraFile>> export_hugectr_network(const JobOptions& o, const std::string& staging_dir,
                                                      const Log& log) {
  HugectrDenseRequest request;
  request.graph = o.graph;
  request.dense = o.hugectr_dense;
  request.output_dir = staging_dir + "/" + o.export_folder;
  request.model_name = o.model_name;
  request.outputs = o.outputs;
  request.sample_batch = o.sample_batch;
  fault_point("dense");
  const auto dense_start = Clock::now();
  auto outcome = run_hugectr_dense_export(request);
  if (!outcome) return outcome.error();
  auto files = describe_dense_files(outcome.value(), request.output_dir, o.export_folder);
  if (!files) return files.error();
  log.stage("dense: the HugeCTR network as " + o.export_folder + "/" + o.model_name + ".pt and " +
            std::to_string(files.value().size() - 1) + " more files in " + format_seconds(seconds_since(dense_start)));
  return files;
}

// A RecIS checkpoint: model.pt's weights loaded into the --dense-model network, frozen.
Result<std::vector<ExtraFile>> export_recis_network(const JobOptions& o, const CheckpointListing& listing,
                                                    const std::string& staging_dir, const Log& log) {
  DenseRequest request;
  request.dense_model = o.dense_model;
  request.state_dict = listing.ckpt_dir + "/model.pt";
  request.dense_name = o.dense_name;
  request.output_dir = staging_dir + "/" + o.export_folder;
  request.model_name = o.model_name;
  request.outputs = o.outputs;
  request.sample_inputs = o.sample_inputs;
  request.sample_batch = o.sample_batch;
  request.fg_path = o.fg;
  request.mc_path = o.mc;
  struct stat st {};
  if (::stat(request.state_dict.c_str(), &st) != 0) {
    return bad_input(request.state_dict, "missing: the dense weights are needed for --dense-model");
  }
  fault_point("dense");
  const auto dense_start = Clock::now();
  auto outcome = run_dense_export(request);  // loads libtorch on first use: part of the stage's cost
  if (!outcome) return outcome.error();
  const double dense_seconds = seconds_since(dense_start);
  for (const auto& warning : outcome.value().warnings) log.warn(warning);
  auto files = describe_dense_files(outcome.value(), request.output_dir, o.export_folder);
  if (!files) return files.error();
  log.stage("dense: " + o.export_folder + "/" + o.model_name + ".pt and " + std::to_string(files.value().size() - 1) +
            " more files in " + format_seconds(dense_seconds) + " (" + format_seconds(outcome.value().seconds) +
            " after loading libtorch)");
  return files;
}

}  // namespace

Result<std::vector<ExtraFile>> export_dense_network(const JobOptions& o, const SourceDescription& source,
                                                    const std::string& staging_dir, const Log& log) {
  if (source.is_hugectr() && !o.hugectr_dense.empty()) return export_hugectr_network(o, staging_dir, log);
  if (o.dense_model.empty()) {
    log.stage(source.is_hugectr() ? "dense: no --dense given, no dense export"
                                  : "dense: no --dense-model given, no dense export");
    return std::vector<ExtraFile>{};
  }
  return export_recis_network(o, source.listing, staging_dir, log);
}

}  // namespace recis_convert
