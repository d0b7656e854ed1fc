#include "recis_convert/dense/dense_stage.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "recis_convert/common/fault_injection.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/dense/dense_plugin.h"
#include "recis_convert/dense/dense_weights.h"
#include "recis_convert/dense/weight_fill.h"
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
Result<DenseExport> export_hugectr_network(const JobOptions& o, const std::string& staging_dir, const Log& log) {
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
  return DenseExport{std::move(files).value(), DenseNetworkRecord{o.export_folder + "/" + o.model_name + ".pt", ""}};
}

// The plugin loads the filled archive, freezes and scores it into <export-folder>/. When its libtorch cannot load
// the module (an op of a newer torch), the filled archive itself becomes the export, unfrozen, and the record says
// why.
Result<DenseExport> freeze_filled_network(const JobOptions& o, const std::string& filled, const WeightFill& fill,
                                          const std::string& output_dir, const Log& log) {
  const std::string model_file = o.model_name + ".pt";
  const auto start = Clock::now();
  DenseRequest request;
  request.dense_model = filled;
  request.architecture = o.dense_model;
  request.output_dir = output_dir;
  request.model_name = o.model_name;
  request.outputs = o.outputs;
  request.sample_inputs = o.sample_inputs;
  request.sample_batch = o.sample_batch;
  request.fg_path = o.fg;
  request.mc_path = o.mc;
  auto outcome = run_dense_export(request);  // loads libtorch on first use: part of the stage's cost
  if (!outcome) return outcome.error();
  for (const auto& warning : outcome.value().warnings) log.warn(warning);
  DenseNetworkRecord record{o.export_folder + "/" + model_file, outcome.value().not_frozen};
  if (!record.not_frozen.empty()) {
    if (::rename(filled.c_str(), (output_dir + "/" + model_file).c_str()) != 0) {
      return output_error(output_dir + "/" + model_file, std::string("cannot write: ") + std::strerror(errno));
    }
    outcome.value().files = {model_file};
    log.warn("dense: " + record.file + " holds the checkpoint's weights (" + std::to_string(fill.tensors) +
             " tensors) but is not frozen nor scored: " + record.not_frozen + "; the torch that scripted " +
             o.dense_model + " loads it");
  }
  auto files = describe_dense_files(outcome.value(), output_dir, o.export_folder);
  if (!files) return files.error();
  if (record.not_frozen.empty()) {
    log.stage("dense: " + record.file + " and " + std::to_string(files.value().size() - 1) + " more files in " +
              format_seconds(seconds_since(start)) + " (" + format_seconds(outcome.value().seconds) +
              " after loading libtorch)");
  }
  return DenseExport{std::move(files).value(), std::move(record)};
}

// The checkpoint's dense weights (RecIS's model.pt, a DCP's dense tensors: dense_weights.h) put into the
// --dense-model archive (weight_fill.h, no runtime), then frozen and scored where the plugin can.
Result<DenseExport> export_checkpoint_network(const JobOptions& o, const SourceDescription& source,
                                              const std::string& staging_dir, const Log& log) {
  const std::string output_dir = staging_dir + "/" + o.export_folder;
  if (source.kind == SourceKind::kRecis && !is_regular_file(source.listing.ckpt_dir + "/model.pt")) {
    return bad_input(source.listing.ckpt_dir + "/model.pt", "missing: the dense weights are needed for --dense-model");
  }
  auto weights = open_dense_weights(source);
  if (!weights) return weights.error();
  if (::mkdir(output_dir.c_str(), 0777) != 0 && errno != EEXIST) {
    return output_error(output_dir, std::string("cannot create: ") + std::strerror(errno));
  }
  fault_point("dense");
  // a name no file of the export takes: it starts with a dot
  const std::string filled = output_dir + "/." + o.model_name + ".pt.filled";
  auto fill = fill_dense_weights(o.dense_model, *weights.value(), o.dense_name, filled);
  if (fill) {
    for (const auto& warning : fill.value().warnings) log.warn(warning);
  }
  Result<DenseExport> exported = fill ? freeze_filled_network(o, filled, fill.value(), output_dir, log)
                                      : Result<DenseExport>(fill.error());
  ::unlink(filled.c_str());  // the scratch archive, unless it became the export
  return exported;
}

}  // namespace

Result<DenseExport> export_dense_network(const JobOptions& o, const SourceDescription& source,
                                         const std::string& staging_dir, const Log& log) {
  if (source.is_hugectr() && !o.hugectr_dense.empty()) return export_hugectr_network(o, staging_dir, log);
  if (o.dense_model.empty()) {
    log.stage(source.is_hugectr() ? "dense: no --dense given, no dense export"
                                  : "dense: no --dense-model given, no dense export");
    return DenseExport{};
  }
  return export_checkpoint_network(o, source, staging_dir, log);
}

}  // namespace recis_convert
