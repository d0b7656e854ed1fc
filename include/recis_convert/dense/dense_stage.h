// The dense stage, on rank 0 after the sparse data agreed: the plugin (dense_plugin.h) writes the network as
// frozen TorchScript into <staging>/<export-folder>/, from a RecIS checkpoint's model.pt and --dense-model, or from
// a HugeCTR graph and --dense. Returns the files it wrote, checksummed for the manifest; none when no dense model
// was asked for.
#pragma once

#include <string>
#include <vector>

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/error.h"
#include "recis_convert/common/log.h"
#include "recis_convert/metadata/manifest.h"
#include "recis_convert/sources/source.h"

namespace recis_convert {

Result<std::vector<ExtraFile>> export_dense_network(const JobOptions& options, const SourceDescription& source,
                                                    const std::string& staging_dir, const Log& log);

}  // namespace recis_convert
