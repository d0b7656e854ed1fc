#include "recis_convert/sinks/sink.h"

#include "recis_convert/sinks/hugectr_tables.h"

namespace recis_convert {

Status prepare_export_on_root(const JobOptions& o, const SourceDescription& source, const std::string& staging_dir) {
  if (!source.is_hugectr() || o.format != ExportFormat::kSafetensors || o.dry_run) return Ok{};
  if (o.eviction.any() || o.reshard) return Ok{};  // sized once the kept rows are counted (hugectr_row_stage.h)
  return create_hugectr_files(*source.hugectr, staging_dir);
}

Status finish_stream_on_root(const StreamRequest& r, bool succeeded, std::vector<FileResult>& files,
                             std::map<std::string, int>& owner, const std::map<std::string, FileDigest>& shared,
                             CheckpointListing& listing) {
  if (r.reshard && r.reshard->layout && r.options.format == ExportFormat::kSafetensors) {
    if (!succeeded) return Ok{};
    auto described = describe_resharded_files(*r.reshard->layout, r.staging_dir, shared, r.options.fsync, r.options.dry_run,
                                              std::move(files));
    if (!described) return described.error();
    files = std::move(described).value();
    if (r.source.is_hugectr()) {  // its ranks stream no files of their own: the source is its tables
      for (const auto& t : r.source.hugectr->tables) files.front().source_bytes += t.source_bytes();
    }
    owner.clear();
    for (const auto& f : files) owner[f.name] = 0;
    describe_resharded_listing(*r.reshard->layout, files, listing);
    return Ok{};
  }
  if (!r.source.is_hugectr()) return Ok{};
  if (r.options.format == ExportFormat::kHdf5) {
    if (!r.options.dry_run) remove_unpacked_tables(*r.source.hugectr, r.staging_dir);
    return Ok{};
  }
  if (!succeeded) return Ok{};
  // every rank wrote part of every file: rank 0 describes the finished files
  auto described = r.options.dry_run ? Result<std::vector<FileResult>>(std::vector<FileResult>{})
                                     : hugectr_file_results(*r.source.hugectr, r.staging_dir, shared);
  if (!described) return described.error();
  files = std::move(described).value();
  for (const auto& f : files) owner[f.name] = 0;
  return Ok{};
}

}  // namespace recis_convert
