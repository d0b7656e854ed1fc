#include "recis_convert/sinks/hdf5_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/torch_archive.h"
#include "recis_convert/common/progress.h"
#include "recis_convert/dense/dense_weights.h"
#include "recis_convert/mpi/job_messages.h"
#include "recis_convert/plan/piece_plan.h"
#include "recis_convert/sinks/hdf5_export.h"
#include "recis_convert/plan/hdf5_layout.h"
#include "recis_convert/sinks/hdf5_row_tables.h"
#include "recis_convert/sources/hugectr_export.h"

namespace recis_convert {
namespace {

using Clock = std::chrono::steady_clock;

// A RecIS checkpoint's files at `mine`: each header read and decided once, its kept tensors summarized for the
// plan, and the file described for the manifest as exported (after the row transforms). With the request's
// tensor_rows (a merge), a tensor's rows may be others than its file's: they are summarized, and kept for the write.
Status summarize_checkpoint_files(const StreamRequest& r, int rank, std::vector<SourceTensor>& tensors,
                                  std::vector<FileResult>& results, PieceSources& sources) {
  const CheckpointListing& listing = r.source.listing;
  for (size_t index : r.mine) {
    const DataFile& file = listing.files[index];
    const std::string path = listing.ckpt_dir + "/" + file.name;
    auto fd = open_input_file(path);
    if (!fd) return fd.error();
    auto decision = decide_data_file(fd.value().get(), listing, file, r.transforms, r.selections, r.tensor_rows);
    if (!decision) return decision.error();
    FileResult result;
    result.name = file.name;
    result.source_bytes = file.size;
    const auto& header = decision.value().header;
    for (size_t i = 0; i < header.tensors.size(); ++i) {
      if (!decision.value().keep[i]) {
        result.dropped.push_back(header.tensors[i]);
        continue;
      }
      const std::optional<RowsFrom>& from = decision.value().from[i];
      const TensorInfo& t = from ? from->tensor : header.tensors[i];
      const auto& rewrite = decision.value().rows[i];
      const auto& selection = decision.value().selections[i];
      // as exported, for the manifest (model.h5 holds the rows that stay, after the row transforms)
      TensorInfo kept = t;
      if (rewrite || selection) {
        const RowLayout out = rewrite ? rewrite->output() : RowLayout::of_tensor(t.dtype, t.dtype_spelling, t.shape);
        const uint64_t rows = selection ? selection->kept : t.shape.at(0);
        kept.dtype = out.dtype;
        kept.dtype_spelling = out.dtype_spelling;
        kept.shape = out.tensor_shape(rows);
        kept.end = kept.begin + rows * out.row_bytes();
      }
      result.kept.push_back(std::move(kept));
      const KeyClass& key = decision.value().keys[i];
      SourceTensor s;
      s.key = t.name;
      s.sparse = key.sparse;
      s.child = key.sparse_key.child;
      s.slot = key.sparse_key.slot;
      s.slice = key.sparse_key.slice;
      const size_t part = t.name.rfind("/part_");
      s.part_rank = key.sparse && part != std::string::npos ? std::atoi(t.name.c_str() + part + 6) : 0;
      s.dtype = t.dtype_spelling;
      s.shape = t.shape;
      s.file = file.name;
      s.offset = header.data_start() + header.tensors[i].begin;
      s.owner = rank;
      if (selection) {
        s.kept_rows = static_cast<int64_t>(selection->kept);
        sources.selections.emplace(PieceKey{s.file, s.key}, selection);
      }
      if (from) sources.rows.emplace(PieceKey{s.file, s.key}, *from);
      tensors.push_back(std::move(s));
    }
    results.push_back(std::move(result));
  }
  return Ok{};
}

// The dense weights for /dense/ (dense_weights.h: model.pt's, a DCP's dense tensors; rank 0 reads them; every
// rank needs names, dtypes and shapes for the collective dataset creation). No model.pt means no /dense group.
Result<std::vector<DenseDataset>> read_dense_datasets(const JobOptions& o, const SourceDescription& source) {
  std::vector<DenseDataset> out;
  auto weights = open_dense_weights(source);
  if (!weights) return weights.error();
  if (!weights.value()) return out;
  const DenseWeights& w = *weights.value();
  const std::string& path = w.path();
  const std::string prefix = o.dense_name.empty() ? "" : o.dense_name + ".";
  for (size_t i = 0; i < w.weights().size(); ++i) {
    const DenseWeight& t = w.weights()[i];
    DenseDataset d;
    d.name = !prefix.empty() && t.name.compare(0, prefix.size(), prefix) == 0 ? t.name.substr(prefix.size()) : t.name;
    d.dtype = t.dtype;
    d.shape = t.shape;
    if (!is_hdf5_link_name(d.name) || d.shape.size() > kMaxHdf5Rank) {
      return bad_input(path, "tensor " + quoted_name(t.name) + " cannot be an HDF5 dataset: it has " +
                                 std::to_string(d.shape.size()) + " dimensions (at most " +
                                 std::to_string(kMaxHdf5Rank) + ") or its name is not one link (holds '/')");
    }
    auto data = w.bytes(i);
    if (!data) return data.error();
    d.data = std::move(data).value();
    out.push_back(std::move(d));
  }
  return out;
}

// Open MPI 4.1.4's MPI-IO (OMPIO and ROMIO alike) retries forever when the file system fills up during a write,
// so the space model.h5 needs is checked first, by rank 0, for everyone.
Status check_free_space(const Hdf5Layout& plan, const std::vector<DenseDataset>& dense, const std::string& staging_dir,
                        const std::string& export_dir) {
  uint64_t needed = 1u << 20;  // HDF5 metadata and headroom
  for (const auto& table : plan.tables) {
    needed += table.parts.size() * 5 * 8;
    for (const auto& slot : table.slots) needed += slot.row_bytes * (slot.dims.empty() ? 1 : slot.dims[0]);
  }
  for (const auto& scalar : plan.optimizer) needed += scalar.row_bytes;
  for (const auto& d : dense) needed += d.data.size();
  struct statvfs fs {};
  if (::statvfs(staging_dir.c_str(), &fs) == 0) {
    const uint64_t available = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
    if (available < needed + needed / 100) {
      return output_error(export_dir, "model.h5 needs about " + format_bytes(static_cast<double>(needed)) +
                                          " but the file system has " + format_bytes(static_cast<double>(available)) +
                                          " free");
    }
  }
  return Ok{};
}

}  // namespace

StreamOutcome Hdf5Sink::stream(const StreamRequest& r, Comm& comm, const Log& log) const {
  const JobOptions& o = r.options;
  const CheckpointListing& listing = r.source.listing;
  StreamOutcome out;
  RankTensors mine;
  std::vector<FileResult> results;
  PieceSources sources;  // with --evict-*: the decisions of this rank's selected tensors; a merge's rows
  if (r.source.has_row_tables()) {
    auto share = row_tables_share(o, *r.source.row_tables, r.mine, comm.rank(), r.staging_dir, r.row_table_plan);
    if (share) {
      mine.tensors = std::move(share.value().tensors);
      results = std::move(share.value().results);
      sources = std::move(share.value().sources);
    } else {
      out.failure = share.error();
    }
  } else {
    auto summarized = summarize_checkpoint_files(r, comm.rank(), mine.tensors, results, sources);
    if (!summarized) out.failure = summarized.error();
  }
  for (auto& result : results) out.add_result(std::move(result), listing.blocks, comm.is_root());
  // Every rank needs every summary: the HDF5 calls that create datasets are collective and must match exactly.
  mine.ok = !out.failure;
  auto everyone = allgather(comm, mine, "header-summary");
  std::vector<SourceTensor> all;
  bool everyone_ok = everyone.ok();
  if (!everyone && !out.failure) out.failure = everyone.error();
  for (const auto& rank : everyone ? everyone.value() : std::vector<RankTensors>{}) {
    everyone_ok = everyone_ok && rank.ok;
    all.insert(all.end(), rank.tensors.begin(), rank.tensors.end());
  }
  if (!everyone_ok) {
    if (out.failure) comm.announce_failure();
    return out;
  }
  // --reshard: the placements the count pass planned (a RecIS checkpoint's, or row tables')
  const ReshardShare* reshard = r.row_table_plan && r.row_table_plan->placements ? &*r.row_table_plan->placements
                                : r.reshard                                  ? &r.reshard->share
                                                                             : nullptr;
  auto plan = lay_out_hdf5(all, o.buffer_mib << 20, listing.ckpt_dir, r.transforms,
                          reshard ? &reshard->table_rows : nullptr);
  if (!plan) {  // the same on every rank; reported once, by rank 0
    if (comm.is_root()) {
      out.failure = plan.error();
      comm.announce_failure();
    }
    return out;
  }
  // a data file too large for one rank: its pieces go to every rank (piece_plan.h); not a merge's, whose rows only
  // the rank that merged them holds
  if (!r.source.has_row_tables() && !r.tensor_rows) {
    std::vector<uint64_t> sizes;
    for (const auto& f : listing.files) sizes.push_back(f.size);
    const WorkPlan work = plan_work(sizes, comm.size(), o.balance, o.piece_bytes());
    std::set<std::string> large;
    for (size_t f = 0; f < listing.files.size(); ++f) {
      if (work.split(f)) large.insert(listing.files[f].name);
    }
    spread_large_files(plan.value(), large, comm.size());
    if (comm.is_root() && !large.empty()) {
      log.stage("hdf5: the rows of " + std::to_string(large.size()) + " file(s) larger than a rank's share are "
                "written by every rank");
    }
  }
  out.piece_bytes = bytes_of_rank(plan.value(), comm.rank());
  // Dense tensors: rank 0 reads model.pt and tells everyone the datasets to create.
  std::vector<DenseDataset> dense;
  auto dense_list = broadcast_result<std::vector<DenseDataset>>(
      comm,
      [&]() -> Result<std::vector<DenseDataset>> {
        auto read = read_dense_datasets(o, r.source);
        if (read) dense = read.value();
        return read;
      },
      "dense-dataset");
  if (!dense_list) {
    if (comm.is_root()) {
      out.failure = dense_list.error();
      comm.announce_failure();
    }
    return out;
  }
  if (!comm.is_root()) dense = std::move(dense_list).value();
  if (o.dry_run) return out;
  auto space = broadcast_result<Ok>(
      comm, [&] { return check_free_space(plan.value(), dense, r.staging_dir, o.export_dir); }, "free-space");
  if (!space) {
    if (comm.is_root()) {
      out.failure = space.error();
      comm.announce_failure();
    }
    return out;
  }
  // Rank 0 chooses the MPI-IO mode for every rank: collective and independent writes must not mix.
  const Hdf5TransferChoice chosen = choose_hdf5_transfer(o.hdf5_transfer, r.staging_dir);
  auto collective = broadcast_value(comm, chosen.collective, "hdf5-transfer");
  if (!collective) {  // a message this program wrote and cannot read: no collective may wait for this rank
    Log::error(collective.error().describe());
    comm.abort(static_cast<int>(collective.error().code));
  }
  log.stage("hdf5: " + std::to_string(plan.value().tables.size()) + " tables, " + std::to_string(dense.size()) +
            " dense tensors into model.h5 (" + chosen.why + ")");
  Hdf5Attributes attributes{tool_version(), resolved_path(listing.ckpt_dir)};
  // Progress: the rounds are collective, so rank 0 knows how far every rank is from the layout alone.
  uint64_t total_bytes = 0, total_datasets = 0;
  total_datasets += plan.value().optimizer.size();
  for (const auto& table : plan.value().tables) total_datasets += table.slots.size();
  auto count = [&](const DatasetLayout& d) {
    for (const auto& piece : d.pieces) total_bytes += piece.rows * d.source_row_bytes;
  };
  for (const auto& table : plan.value().tables) std::for_each(table.slots.begin(), table.slots.end(), count);
  std::for_each(plan.value().optimizer.begin(), plan.value().optimizer.end(), count);
  ProgressMeter meter(total_bytes, total_datasets, o.progress_seconds(), Clock::now(), "datasets");
  auto progress = [&](uint64_t bytes, uint64_t datasets) {
    if (comm.is_root() && meter.due(Clock::now())) log.stage(meter.line(bytes, datasets, Clock::now()));
  };
  auto written = write_hdf5_export(r.staging_dir + "/model.h5", plan.value(), dense, listing, attributes, comm,
                                   o.buffer_mib << 20,
                                   collective.value(), o.fsync,
                                   sources, reshard, progress);
  if (!written) {
    out.failure = written.error();
    comm.announce_failure();
  }
  return out;
}

std::vector<std::string> Hdf5Sink::shared_files(const StreamRequest& r) const {
  if (r.options.dry_run) return {};
  return {"model.h5"};
}

// (model.h5 is described by its digest where the metadata is written: metadata_stage.h)
Status Hdf5Sink::describe_on_root(const StreamRequest& r, bool, std::vector<FileResult>&, std::map<std::string, int>&,
                                  const SharedFileDigests&, CheckpointListing&) const {
  if (r.source.has_row_tables() && !r.options.dry_run) remove_unpacked_tables(*r.source.row_tables, r.staging_dir);
  return Ok{};
}

}  // namespace recis_convert
