#include "recis_convert/sinks/sink.h"

#include "recis_convert/sinks/checkpoint_files_sink.h"
#include "recis_convert/sinks/hdf5_sink.h"
#include "recis_convert/sinks/row_tables_sink.h"
#include "recis_convert/sinks/resharded_files_sink.h"

namespace recis_convert {

Status Sink::prepare_on_root(const JobOptions&, const SourceDescription&, const std::string&) const { return Ok{}; }

std::vector<std::string> Sink::shared_files(const StreamRequest&) const { return {}; }

Status Sink::describe_on_root(const StreamRequest&, bool, std::vector<FileResult>&, std::map<std::string, int>&,
                              const SharedFileDigests&, CheckpointListing&) const {
  return Ok{};
}

std::unique_ptr<Sink> make_sink(const JobOptions& o, const SourceDescription& source) {
  if (o.format == ExportFormat::kHdf5) return std::make_unique<Hdf5Sink>();
  if (source.has_row_tables()) return std::make_unique<RowTablesSink>();
  if (o.reshard != 0) return std::make_unique<ReshardedFilesSink>();
  return std::make_unique<CheckpointFilesSink>();
}

}  // namespace recis_convert
