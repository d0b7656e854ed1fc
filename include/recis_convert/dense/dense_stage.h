// The dense stage, on rank 0 after the sparse data agreed: the network as TorchScript in
// <staging>/<export-folder>/, from a RecIS checkpoint's model.pt and --dense-model (filled by weight_fill.h, then
// frozen by the plugin, dense_plugin.h, where its libtorch can load it), or from a HugeCTR graph and --dense.
// Returns the files it wrote, checksummed for the manifest, and what became of the network; nothing when no dense
// model was asked for.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/error.h"
#include "recis_convert/common/log.h"
#include "recis_convert/metadata/manifest.h"
#include "recis_convert/sources/source.h"

namespace recis_convert {

struct DenseExport {
  std::vector<ExtraFile> files;
  std::optional<DenseNetworkRecord> network;
};

Result<DenseExport> export_dense_network(const JobOptions& options, const SourceDescription& source,
                                         const std::string& staging_dir, const Log& log);

}  // namespace recis_convert
