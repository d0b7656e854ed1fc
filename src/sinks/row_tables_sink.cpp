#include "recis_convert/sinks/row_tables_sink.h"

#include "recis_convert/sinks/row_table_files.h"
#include "recis_convert/sinks/resharded_files_sink.h"
#include "recis_convert/sinks/stream_progress.h"

namespace recis_convert {

Status RowTablesSink::prepare_on_root(const JobOptions&, const SourceDescription&, const std::string&) const {
  return Ok{};  // the files are made once every rank's rows are counted and placed (pipeline/row_table_stage.h)
}

StreamOutcome RowTablesSink::stream(const StreamRequest& r, Comm& comm, const Log& log) const {
  const JobOptions& o = r.options;
  const RowTables& model = *r.source.row_tables;
  StreamOutcome out;
  uint64_t total = 0;
  for (const auto& t : model.tables) total += t.source.rows() * t.source.read_row_bytes();
  StreamProgress progress(comm, log, o.progress_seconds(), total,
                          model.tables.size() * static_cast<uint64_t>(comm.size()), "table shares");
  if (!o.dry_run) {
    auto count = [&progress, &out](uint64_t n) {
      progress.add_bytes(n);
      out.shared_bytes += n;
    };
    auto written = write_row_table_ranges(o, model, *r.row_table_plan, r.transforms, r.staging_dir, comm.rank(),
                                          comm.size(), o.resume ? &out.resumed : nullptr, log, count);
    if (!written) {
      out.failure = written.error();
      comm.announce_failure();
    }
  }
  progress.finish();
  return out;
}

std::vector<std::string> RowTablesSink::shared_files(const StreamRequest& r) const {
  if (r.reshard) return ReshardedFilesSink().shared_files(r);
  std::vector<std::string> names;
  if (r.options.dry_run) return names;
  for (const auto& t : r.source.row_tables->tables) names.push_back(t.file);
  return names;
}

Status RowTablesSink::describe_on_root(const StreamRequest& r, bool succeeded, std::vector<FileResult>& files,
                                           std::map<std::string, int>& owner, const SharedFileDigests& shared,
                                           CheckpointListing& listing) const {
  if (!succeeded) return Ok{};
  if (r.reshard) {  // the part files, as a checkpoint's resharded; the source is the tables
    auto described = ReshardedFilesSink().describe_on_root(r, succeeded, files, owner, shared, listing);
    if (!described) return described;
    for (const auto& t : r.source.row_tables->tables) files.front().source_bytes += t.source_bytes();
    return Ok{};
  }
  auto described = r.options.dry_run ? Result<std::vector<FileResult>>(std::vector<FileResult>{})
                                     : row_table_file_results(*r.source.row_tables, r.staging_dir, shared);
  if (!described) return described.error();
  for (const FileResult& f : described.value()) {  // rank 0, whichever ranks wrote into it
    if (!r.options.fsync) break;
    auto synced = fsync_file(r.staging_dir + "/" + f.name);
    if (!synced) return synced;
  }
  files = std::move(described).value();
  for (const auto& f : files) owner[f.name] = 0;
  return Ok{};
}

}  // namespace recis_convert
