#include "recis_convert/sinks/checkpoint_files_sink.h"

#include <unistd.h>

#include "recis_convert/common/fault_injection.h"
#include "recis_convert/common/interrupt.h"
#include "recis_convert/sinks/copy_engine.h"
#include "recis_convert/sinks/stream_progress.h"
#include "recis_convert/sinks/writeback.h"

namespace recis_convert {
namespace {

constexpr size_t kMaxFilesAwaitingFsync = 32;  // open descriptors per rank while writeback runs behind the copy

}  // namespace

StreamOutcome CheckpointFilesSink::stream(const StreamRequest& r, Comm& comm, const Log& log) const {
  const JobOptions& o = r.options;
  const CheckpointListing& listing = r.source.listing;
  StreamOutcome out;
  const CopyChoice copy = choose_copy_path_for(o.copy_method, listing.ckpt_dir,
                                              r.staging_dir.empty() ? listing.ckpt_dir : r.staging_dir);
  CopyEngine engine(o.buffer_mib << 20, copy.path, o.piece_bytes());
  engine.set_hashing_cpus(usable_cpus());
  WritebackQueue writeback(kMaxFilesAwaitingFsync);
  FileExportSettings settings{r.staging_dir, o.dry_run, o.fsync ? &writeback : nullptr, r.selections, nullptr};
  settings.tensor_rows = r.tensor_rows;
  const bool resume = o.resume && !o.dry_run;
  if (resume) {  // each written file and piece is journaled once durable, so that a next --resume run can adopt it
    settings.once_durable = [&r, &listing](const FileResult& done, double seconds) {
      return journal_file(r.staging_dir, listing.ckpt_dir, done, seconds);
    };
    settings.piece_durable = [&r, &listing](const PieceOutcome& done, double seconds) {
      return journal_piece(r.staging_dir, listing.ckpt_dir, done, seconds);
    };
  }
  uint64_t total_bytes = 0;
  for (const auto& f : listing.files) total_bytes += f.size;
  StreamProgress progress(comm, log, o.progress_seconds(), total_bytes, r.work_items,
                          r.work_items == listing.files.size() ? "files" : "files and pieces");
  engine.set_progress_hook([&progress](uint64_t n) { progress.add_bytes(n); });
  for (size_t index : r.mine) {
    if (comm.peer_failed()) break;  // the export will be discarded: stop streaming
    if (auto stop = interruption()) {
      out.failure = *stop;
      break;
    }
    const DataFile& file = listing.files[index];
    if (resume) {  // a file an interrupted run finished, checked, instead of exporting it again
      if (auto adopted = adopt_journaled_file(r.staging_dir, listing.ckpt_dir, file, o.piece_bytes(), log)) {
        ++out.resumed.files;
        out.resumed.bytes += adopted->result.output_bytes;
        out.resumed.seconds += adopted->seconds;
        out.add_result(std::move(adopted->result), listing.blocks, comm.is_root());
        progress.item_done(file.size);
        continue;
      }
      ::unlink((r.staging_dir + "/" + file.name).c_str());  // a split file's pieces, journaled when it was split
    }
    auto result = export_data_file(listing, file, r.transforms, engine, settings);
    if (!result) {
      out.failure = result.error();
      break;
    }
    log.detail(file.name + ": kept " + std::to_string(result.value().kept.size()) + ", dropped " +
               std::to_string(result.value().dropped.size()) + " tensors");
    out.add_result(std::move(result).value(), listing.blocks, comm.is_root());
    progress.item_done(file.size);
    fault_point("file");
  }
  for (const WorkItem& item : out.failure ? std::vector<WorkItem>{} : r.pieces) {  // the pieces of split files
    if (comm.peer_failed()) break;
    if (auto stop = interruption()) {
      out.failure = *stop;
      break;
    }
    const DataFile& file = listing.files[item.file];
    if (resume) {  // a piece an interrupted run finished, checked, instead of writing it again
      if (auto adopted = adopt_journaled_piece(r.staging_dir, listing.ckpt_dir, file, item.piece, item.pieces,
                                               o.piece_bytes(), log)) {
        ++out.resumed.pieces;
        out.resumed.bytes += adopted->piece->bytes_out;
        out.resumed.seconds += adopted->seconds;
        if (item.piece == 0) out.add_result(std::move(adopted->result), listing.blocks, comm.is_root());
        out.pieces.push_back(std::move(*adopted->piece));
        progress.item_done(file.size / item.pieces);
        continue;
      }
    }
    auto done = export_data_file_piece(listing, file, item.piece, item.pieces, r.transforms, engine, settings);
    if (!done) {
      out.failure = done.error();
      break;
    }
    log.detail(file.name + ": piece " + std::to_string(item.piece + 1) + " of " + std::to_string(item.pieces) + ", " +
               std::to_string(done.value().piece.bytes_out) + " bytes");
    if (done.value().file) out.add_result(std::move(*done.value().file), listing.blocks, comm.is_root());
    out.pieces.push_back(std::move(done.value().piece));
    progress.item_done(file.size / item.pieces);
    fault_point("piece");
  }
  // Every file of this rank is durable before it reports success. An interrupted --resume run also waits for the
  // files already written, so that they are journaled and the next run adopts them.
  if (!out.failure || resume) {
    auto synced = writeback.flush_all();
    if (!synced && !out.failure) out.failure = synced.error();
  }
  if (out.failure) comm.announce_failure();  // agree_on_status counts announcers: every failing rank announces
  progress.finish();
  out.copy_path = copy_path_name(engine.path());
  out.copy_why = copy.why;
  if (!engine.fallback().empty()) {
    out.copy_why += "; then " + engine.fallback() + ", so buffered";
    log.detail("copy: " + out.copy_why);
  }
  return out;
}

}  // namespace recis_convert
