#include "recis_convert/sinks/resharded_files_sink.h"

#include "recis_convert/common/interrupt.h"
#include "recis_convert/sinks/reshard_writer.h"
#include "recis_convert/sinks/stream_progress.h"

namespace recis_convert {

StreamOutcome ReshardedFilesSink::stream(const StreamRequest& r, Comm& comm, const Log& log) const {
  const JobOptions& o = r.options;
  const CheckpointListing& listing = r.source.listing;
  StreamOutcome out;
  ReshardWriter writer(o.buffer_mib << 20, r.staging_dir, r.reshard->share, o.fsync);
  uint64_t total_bytes = 0;
  for (const auto& f : listing.files) total_bytes += f.size;
  StreamProgress progress(comm, log, o.progress_seconds(), total_bytes, listing.files.size());
  writer.set_progress_hook([&progress](uint64_t n) { progress.add_bytes(n); });
  for (size_t index : r.mine) {
    if (comm.peer_failed()) break;
    if (auto stop = interruption()) {
      out.failure = *stop;
      break;
    }
    auto result =
        writer.write_file(listing, listing.files[index], r.transforms, r.selections, o.dry_run, r.tensor_rows);
    if (!result) {
      out.failure = result.error();
      break;
    }
    out.add_result(std::move(result).value(), listing.blocks, comm.is_root());
    progress.item_done(listing.files[index].size);
  }
  auto closed = writer.finish();  // rank 0 fsyncs the output files after the barrier, whoever wrote into them
  if (!out.failure && !closed) out.failure = closed.error();
  if (out.failure) comm.announce_failure();
  progress.finish();
  return out;
}

std::vector<std::string> ReshardedFilesSink::shared_files(const StreamRequest& r) const {
  std::vector<std::string> names;
  if (r.options.dry_run || !r.reshard || !r.reshard->layout) return names;  // (the others know no layout)
  for (const ReshardFile& f : r.reshard->layout->files) names.push_back(f.name);
  return names;
}

Status ReshardedFilesSink::describe_on_root(const StreamRequest& r, bool succeeded, std::vector<FileResult>& files,
                                            std::map<std::string, int>& owner, const SharedFileDigests& shared,
                                            CheckpointListing& listing) const {
  if (!succeeded) return Ok{};
  auto described = describe_resharded_files(*r.reshard->layout, r.staging_dir, shared, r.options.fsync,
                                            r.options.dry_run, std::move(files));
  if (!described) return described.error();
  files = std::move(described).value();
  owner.clear();
  for (const auto& f : files) owner[f.name] = 0;
  describe_resharded_listing(*r.reshard->layout, files, listing);
  return Ok{};
}

}  // namespace recis_convert
