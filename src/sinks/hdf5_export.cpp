#include "recis_convert/sinks/hdf5_export.h"

#include <fcntl.h>
#include <sys/vfs.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

#include "recis_convert/common/activity.h"
#include "recis_convert/common/fault_injection.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/mpi/hdf5_mpio.h"
#include "recis_convert/pipeline/row_loop.h"
#include "recis_convert/plan/slices.h"
#include "recis_convert/sinks/reshard_writer.h"
#include "recis_convert/transforms/row_selection.h"
#include "recis_convert/sources/column_reader.h"

namespace recis_convert {
namespace {

// Closes an HDF5 identifier with the right H5*close.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : id_(other.id_), close_(other.close_) { other.id_ = -1; }
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      if (id_ >= 0) close_(id_);
      id_ = other.id_;
      close_ = other.close_;
      other.id_ = -1;
    }
    return *this;
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// The HDF5 type used both in memory and in the file (equal types keep collective transfers collective).
// F16 is an IEEE half that h5py reads as float16; BF16 has no HDF5 type and is stored as its uint16 bits.
Handle hdf5_type(DType dtype) {
  switch (dtype) {
    case DType::kF64: return Handle(H5Tcopy(H5T_IEEE_F64LE), H5Tclose);
    case DType::kF32: return Handle(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
    case DType::kF16: {
      hid_t t = H5Tcopy(H5T_IEEE_F32LE);
      H5Tset_fields(t, 15, 10, 5, 0, 10);
      H5Tset_size(t, 2);
      H5Tset_ebias(t, 15);
      return Handle(t, H5Tclose);
    }
    case DType::kBF16:
    case DType::kU16: return Handle(H5Tcopy(H5T_STD_U16LE), H5Tclose);
    case DType::kI64: return Handle(H5Tcopy(H5T_STD_I64LE), H5Tclose);
    case DType::kU64: return Handle(H5Tcopy(H5T_STD_U64LE), H5Tclose);
    case DType::kI32: return Handle(H5Tcopy(H5T_STD_I32LE), H5Tclose);
    case DType::kU32: return Handle(H5Tcopy(H5T_STD_U32LE), H5Tclose);
    case DType::kI16: return Handle(H5Tcopy(H5T_STD_I16LE), H5Tclose);
    case DType::kI8: return Handle(H5Tcopy(H5T_STD_I8LE), H5Tclose);
    default: return Handle(H5Tcopy(H5T_STD_U8LE), H5Tclose);  // U8, bool and the 8-bit float formats, as bytes
  }
}

std::string dtype_attribute(DType dtype) {
  std::string name = dtype_torch_name(dtype);
  return name.empty() ? "raw" : name;
}

Status write_string_attribute(hid_t object, const char* name, const std::string& value, const std::string& path) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const char* text = value.c_str();
  if (!attribute.ok() || H5Awrite(attribute.get(), type.get(), &text) < 0) {
    return output_error(path, std::string("cannot write attribute ") + name);
  }
  return Ok{};
}

Status write_u64_attribute(hid_t object, const char* name, uint64_t value, const std::string& path) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(H5Acreate2(object, name, H5T_STD_U64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attribute.ok() || H5Awrite(attribute.get(), H5T_NATIVE_UINT64, &value) < 0) {
    return output_error(path, std::string("cannot write attribute ") + name);
  }
  return Ok{};
}

Result<Handle> create_group(hid_t parent, const std::string& name, const std::string& path) {
  Handle gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
  H5Pset_obj_track_times(gcpl.get(), false);  // no timestamps: the same export is the same bytes, run after run
  Handle group(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose);
  if (!group.ok()) return output_error(path, "cannot create group " + name);
  return group;
}

Result<Handle> create_dataset(hid_t file, const std::string& name, DType dtype, const std::vector<uint64_t>& dims,
                              const std::string& path) {
  Handle type = hdf5_type(dtype);
  std::vector<hsize_t> h(dims.begin(), dims.end());
  Handle space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(h.size()), h.data(), nullptr),
               H5Sclose);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER);  // every byte is written; do not write fill values first
  H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS);          // no chunks: sidesteps ROMIO's chunked-dataset bugs
  H5Pset_obj_track_times(dcpl.get(), false);          // no timestamps (as for groups)
  Handle dataset(H5Dcreate2(file, name.c_str(), type.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                 H5Dclose);
  if (!dataset.ok()) return output_error(path, "cannot create dataset " + name);
  auto attr = write_string_attribute(dataset.get(), "dtype", dtype_attribute(dtype), path);
  if (!attr) return attr.error();
  return dataset;
}

// Writes `rows` rows from `data` at `first_row` (rows == 0: take part selecting nothing). One collective call.
// Rows into a dataset: `runs` of (first row, rows) in the file, taken in order from `data`, which holds them back
// to back; no run (or no rows) selects nothing, which a rank does in a collective round it has no piece in.
Status write_row_runs(hid_t dataset, DType dtype, const std::vector<uint64_t>& dims,
                      const std::vector<std::pair<uint64_t, uint64_t>>& runs, const char* data, hid_t dxpl,
                      const std::string& path, const std::string& name) {
  Handle type = hdf5_type(dtype);
  Handle file_space(H5Dget_space(dataset), H5Sclose);
  std::vector<hsize_t> start(dims.size(), 0), count(dims.begin(), dims.end());
  Handle memory_space(-1, H5Sclose);
  uint64_t rows = 0;
  for (const auto& run : runs) rows += run.second;
  if (dims.empty()) {  // a scalar: all or nothing
    memory_space = Handle(H5Screate(H5S_SCALAR), H5Sclose);
    if (rows == 0) {
      H5Sselect_none(file_space.get());
      H5Sselect_none(memory_space.get());
    }
  } else {
    H5Sselect_none(file_space.get());
    for (const auto& [first, n] : runs) {
      if (n == 0) continue;
      start[0] = first;
      count[0] = n;
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_OR, start.data(), nullptr, count.data(), nullptr);
    }
    std::vector<hsize_t> mem_dims(dims.begin(), dims.end());
    mem_dims[0] = rows == 0 ? 1 : rows;  // a valid extent; the selection below is empty anyway
    memory_space = Handle(H5Screate_simple(static_cast<int>(mem_dims.size()), mem_dims.data(), nullptr), H5Sclose);
    if (rows == 0) H5Sselect_none(memory_space.get());
  }
  static const char kNothing[8] = {0};
  H5FD_mpio_xfer_t transfer = H5FD_MPIO_INDEPENDENT;
  H5Pget_dxpl_mpio(dxpl, &transfer);
  WaitingForPeers waiting(transfer == H5FD_MPIO_COLLECTIVE);  // for the stall watchdog: a collective round
  if (H5Dwrite(dataset, type.get(), memory_space.get(), file_space.get(), dxpl, data ? data : kNothing) < 0) {
    return output_error(path, "write to " + name + " failed");
  }
  return Ok{};
}

Status write_rows(hid_t dataset, DType dtype, const std::vector<uint64_t>& dims, uint64_t first_row, uint64_t rows,
                  const char* data, hid_t dxpl, const std::string& path, const std::string& name) {
  std::vector<std::pair<uint64_t, uint64_t>> runs;
  if (rows > 0) runs.emplace_back(first_row, rows);
  return write_row_runs(dataset, dtype, dims, runs, data, dxpl, path, name);
}

// A tensor's progress over its pieces: a selected one's next source row and its part's selector; a routed one's
// rows written into each of its targets so far (per placement target).
struct TensorProgress {
  uint64_t next = 0;
  std::optional<RowSelector> selector;
  std::vector<uint64_t> written;
};

// Where one piece's rows come from and go: its source file and tensor, and what is known of the tensor so far.
struct PieceSource {
  int fd = -1;
  std::string path;
  const PartSelection* selection = nullptr;  // the tensor's part's decisions, if it has any
  const RowsFrom* rows = nullptr;  // rows that stand in for the tensor's own (a merge's), if any
  std::shared_ptr<RowReader> decision_rows;  // the embedding rows of the selection's decision, where no file holds them
  TensorProgress* progress = nullptr;
};

// One piece's rows through the row loop as one chunk (a collective round writes it at once): `runs` gets the
// dataset rows they go to (one run, or with --reshard one per target part), `data` the rows.
//   - a plain piece: its source rows, rewritten;
//   - a selected piece (the tensor's part has an eviction decision): the next piece.rows kept rows of the tensor,
//     read from where its previous piece stopped;
//   - a routed piece (--reshard): its source rows with their ids, the evicted ones left out, the rest rewritten and
//     grouped by target part.
Status load_piece(RowLoop& loop, const PieceSource& source, const WritePiece& piece, const DatasetLayout& plan,
                  const ReshardShare* reshard, const PartOfIdTable* part_of, PlacementIndex* placements,
                  OpenInputs& files,
                  std::vector<std::pair<uint64_t, uint64_t>>& runs, const char*& data) {
  const uint64_t in_row = plan.source_row_bytes, out_row = plan.row_bytes;
  TensorProgress& progress = *source.progress;
  if (source.selection && !progress.selector) {
    auto opened = source.decision_rows
                      ? RowSelector::open(source.selection->decision, nullptr, source.decision_rows)
                      : RowSelector::open(*source.selection);
    if (!opened) return opened.error();
    progress.selector.emplace(std::move(opened).value());
  }
  // the rows, and beside them their part's ids to route them by: the file's, or those standing in for them
  std::vector<FileColumn> columns{FileColumn{source.fd, source.path, plan.path + " rows", piece.tensor_offset, in_row}};
  std::vector<std::shared_ptr<RowReader>> from;
  if (source.rows) from.push_back(source.rows->reader);
  RowRun run;
  run.first = (piece.source_offset - piece.tensor_offset) / in_row;
  run.end = run.first + piece.rows;
  run.slots = {OutputSlot{0, plan.rewrite.get()}};
  run.selector = progress.selector ? &*progress.selector : nullptr;
  run.one_chunk = true;
  const TensorPlacement* place = nullptr;
  if (piece.routed) {
    auto placement = reshard->sparse.find(piece.tensor);
    if (placement == reshard->sparse.end()) {
      return Error{ExitCode::kInternal, source.path, "the reshard plan has no placement for tensor " + piece.tensor};
    }
    place = &placement->second;
    if (source.rows) {
      if (!source.rows->ids) {
        return Error{ExitCode::kInternal, source.path, "tensor " + piece.tensor + " has rows without their ids"};
      }
      from.push_back(source.rows->ids);
    } else {
      auto ids_fd = files.fd(place->ids.path);
      if (!ids_fd) return ids_fd.error();
      columns.push_back(FileColumn{ids_fd.value(), place->ids.path, "tensor \"" + place->ids.tensor + "\"",
                                   place->ids.offset, sizeof(int64_t)});
    }
    run.id_column = 1;
    run.route = part_of;
    run.scratch_row_bytes = out_row;  // the rows grouped by target
    if (progress.written.empty()) progress.written.assign(place->targets.size(), 0);
    placements->set(place->targets);
  } else if (piece.selected) {  // piece.rows kept rows, from where the tensor's previous piece stopped
    run.first = progress.next;
    run.end = source.selection->rows;
    run.kept_at_most = piece.rows;
  }
  ColumnReader in_file(std::move(columns));
  SideBySide merged(std::move(from));
  RowReader& reader = source.rows ? static_cast<RowReader&>(merged) : in_file;
  uint64_t kept = 0;
  auto stopped = loop.run(reader, run, [&](const RowChunk& chunk) -> Status {
    kept = chunk.rows;
    data = reinterpret_cast<const char*>(chunk.slots[0]);
    if (!place) {
      if (chunk.rows > 0) runs.emplace_back(piece.first_row, chunk.rows);
      return Ok{};
    }
    std::vector<uint32_t> index(chunk.rows);
    if (auto unplaced = placements->look_up(chunk.targets, chunk.rows, index.data())) {
      return unplaced_row(place->ids.path, "tensor \"" + place->ids.tensor + "\"", chunk.first + *unplaced);
    }
    std::vector<uint64_t> count(place->targets.size(), 0);
    for (uint32_t i : index) ++count[i];
    std::vector<uint64_t> fill(place->targets.size(), 0);
    for (size_t t = 0, next = 0; t < place->targets.size(); ++t) {
      fill[t] = next;
      next += count[t];
      if (count[t] == 0) continue;
      const Placement& p = place->targets[t];
      runs.emplace_back(plan.target_first_row.at(p.target) + p.row + progress.written[t], count[t]);
      progress.written[t] += count[t];
    }
    group_rows(chunk.slots[0], out_row, index.data(), chunk.rows, fill.data(), chunk.scratch);
    data = reinterpret_cast<const char*>(chunk.scratch);
    return Ok{};
  });
  if (!stopped) return stopped.error();
  if (piece.selected && !piece.routed) {
    if (kept < piece.rows) {
      return bad_input(source.path, "the part " + source.selection->part.table + "/" + source.selection->part.part +
                                        " kept fewer rows than counted: the file changed during the run");
    }
    progress.next = stopped.value();
  }
  return Ok{};
}

}  // namespace

Hdf5TransferChoice transfer_for_filesystem(int64_t f_type) {
  // linux/magic.h
  static const std::map<int64_t, const char*> kLocal = {
      {0x01021994, "tmpfs"}, {0xEF53, "ext4"},       {0x58465342, "XFS"},  {0x9123683E, "btrfs"},
      {0x2FC12FC1, "ZFS"},   {0x794C7630, "overlayfs"}, {0xF2F52010, "F2FS"}};
  auto local = kLocal.find(f_type);
  if (local != kLocal.end()) {
    return {false, std::string(local->second) + " is a local file system: independent MPI-IO (each rank's piece is "
                                                "one contiguous write; collective buffering would copy it once more)"};
  }
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(f_type));
  return {true, std::string("file system type ") + hex + " is not known to be local: collective MPI-IO"};
}

Hdf5TransferChoice choose_hdf5_transfer(Hdf5Transfer asked, const std::string& dir) {
  if (asked == Hdf5Transfer::kCollective) return {true, "--hdf5-transfer collective"};
  if (asked == Hdf5Transfer::kIndependent) return {false, "--hdf5-transfer independent"};
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) != 0) return {true, "the file system type is unknown: collective MPI-IO"};
  return transfer_for_filesystem(static_cast<int64_t>(fs.f_type));
}

Status write_hdf5_export(const std::string& path, const Hdf5Layout& plan, const std::vector<DenseDataset>& dense,
                         const CheckpointListing& listing, const Hdf5Attributes& attributes, Comm& comm,
                         size_t buffer_bytes, bool collective, bool fsync_file, const PieceSources& sources,
                         const ReshardShare* reshard,
                         const std::function<void(uint64_t bytes, uint64_t datasets)>& progress) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors become Error values, not stack dumps on stderr
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  auto mpio = use_mpi_io(fapl.get(), comm, path);
  if (!mpio) return mpio;
  const int rank = comm.rank(), world_size = comm.size();
  // Collective metadata operations stay off: they are broken in HDF5 1.10.5-1.10.8 (HDFFV-11260).
  std::optional<WaitingForPeers> creating(std::in_place);  // collective: every rank opens the file together
  Handle file(H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl.get()), H5Fclose);
  creating.reset();
  if (!file.ok()) return output_error(path, "cannot create the HDF5 file");
  Handle dxpl(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  H5Pset_dxpl_mpio(dxpl.get(), collective ? H5FD_MPIO_COLLECTIVE : H5FD_MPIO_INDEPENDENT);

  // Structure and attributes: collective, identical arguments on every rank (all derived from the same plan).
  for (const auto& [name, value] : {std::pair{"tool_version", attributes.tool_version},
                                    std::pair{"source_checkpoint", attributes.source_checkpoint}}) {
    auto attr = write_string_attribute(file.get(), name, value, path);
    if (!attr) return attr;
  }
  auto sparse = create_group(file.get(), "sparse", path);
  if (!sparse) return sparse.error();
  std::map<std::string, Handle> datasets;
  std::vector<std::pair<const DatasetLayout*, hid_t>> order;
  for (const auto& table : plan.tables) {
    auto group = create_group(sparse.value().get(), table.child, path);
    if (!group) return group.error();
    auto dim = write_u64_attribute(group.value().get(), "embedding_dim", table.embedding_dim, path);
    if (!dim) return dim;
    auto rows = write_u64_attribute(group.value().get(), "rows", table.rows, path);
    if (!rows) return rows;
    for (const auto& slot : table.slots) {
      auto dataset = create_dataset(file.get(), slot.path, slot.dtype, slot.dims, path);
      if (!dataset) return dataset.error();
      if (slot.rewrite && !slot.rewrite->output().encoding.empty()) {
        auto attr = write_string_attribute(dataset.value().get(), "quantization", slot.rewrite->output().encoding, path);
        if (!attr) return attr;
      }
      order.emplace_back(&slot, dataset.value().get());
      datasets.emplace(slot.path, std::move(dataset).value());
    }
    auto parts = create_dataset(file.get(), "/sparse/" + table.child + "/parts", DType::kI64,
                                {table.parts.size(), 5}, path);
    if (!parts) return parts.error();
    std::vector<int64_t> rows_of_parts;
    for (const auto& p : table.parts) {
      for (uint64_t v : {p.slice_begin, p.slice_end, p.slice_size, p.first_row, p.rows}) {
        rows_of_parts.push_back(static_cast<int64_t>(v));
      }
    }
    auto written = write_rows(parts.value().get(), DType::kI64, {table.parts.size(), 5}, 0,
                              rank == 0 ? table.parts.size() : 0, reinterpret_cast<const char*>(rows_of_parts.data()),
                              dxpl.get(), path, "parts of " + table.child);
    if (!written) return written;
  }
  if (!plan.optimizer.empty()) {
    auto group = create_group(file.get(), "optimizer", path);
    if (!group) return group.error();
    for (const auto& scalar : plan.optimizer) {
      auto dataset = create_dataset(file.get(), scalar.path, scalar.dtype, scalar.dims, path);
      if (!dataset) return dataset.error();
      order.emplace_back(&scalar, dataset.value().get());
      datasets.emplace(scalar.path, std::move(dataset).value());
    }
  }

  // Data: every dataset in plan order, in collective rounds.
  std::vector<char> buffer(std::max<size_t>(buffer_bytes, 1));
  OpenInputs open_files;  // closed on every path out
  std::optional<Error> read_failure;
  std::map<PieceKey, TensorProgress> tensors;
  RowLoop loop(buffer);
  std::optional<PartOfIdTable> part_of;
  std::optional<PlacementIndex> placements;
  if (reshard) {
    part_of.emplace(reshard->count);
    placements.emplace(reshard->count);
  }
  uint64_t bytes_done = 0, datasets_done = 0;  // over all ranks: every rank knows the layout and the rounds are in step
  for (const auto& [dataset_plan, dataset] : order) {
    const std::vector<WritePiece> mine = dataset_plan->pieces_of(rank);
    const size_t rounds = dataset_plan->rounds(world_size);
    std::vector<uint64_t> round_bytes(rounds, 0);
    if (progress) {
      for (int r = 0; r < world_size; ++r) {
        const auto pieces = dataset_plan->pieces_of(r);
        for (size_t i = 0; i < pieces.size() && i < rounds; ++i) {
          round_bytes[i] += pieces[i].rows * dataset_plan->source_row_bytes;
        }
      }
    }
    for (size_t round = 0; round < rounds; ++round) {
      const WritePiece* piece = round < mine.size() && !read_failure ? &mine[round] : nullptr;
      const char* data = buffer.data();
      std::vector<std::pair<uint64_t, uint64_t>> runs;  // the piece's rows: one run, or one per target part
      if (piece) {
        // an absolute name (HugeCTR tables) as it is, else a data file of the checkpoint
        PieceSource source;
        source.path = piece->file[0] == '/' ? piece->file : listing.ckpt_dir + "/" + piece->file;
        const PieceKey key{piece->file, piece->tensor};
        auto selection = sources.selections.find(key);
        if (selection != sources.selections.end()) source.selection = selection->second.get();
        auto rows = sources.rows.find(key);
        if (rows != sources.rows.end()) source.rows = &rows->second;
        auto decision_rows = sources.decision_rows.find(key);
        if (decision_rows != sources.decision_rows.end()) source.decision_rows = decision_rows->second;
        source.progress = &tensors[key];
        auto source_fd = open_files.fd(source.path);
        Status loaded = source_fd ? Status(Ok{}) : Status(source_fd.error());
        if (loaded && piece->selected && !piece->routed && !source.selection) {
          loaded = Error{ExitCode::kInternal, source.path,
                         "no eviction decision for tensor " + quoted_name(piece->tensor)};
        }
        if (loaded) {
          source.fd = source_fd.value();
          loaded = load_piece(loop, source, *piece, *dataset_plan, reshard, part_of ? &*part_of : nullptr,
                              placements ? &*placements : nullptr, open_files, runs, data);
        }
        if (!loaded) {
          read_failure = loaded.error();
          runs.clear();
        }
      }
      auto written = write_row_runs(dataset, dataset_plan->dtype, dataset_plan->dims, runs, data, dxpl.get(), path,
                                    dataset_plan->path);
      if (!written) return written;
      bytes_done += round_bytes[round];
      if (progress) progress(bytes_done, datasets_done);
      fault_point("hdf5");
    }
    ++datasets_done;
  }
  // Every checkpoint file read is still as discovered (HugeCTR's tables, by absolute path, are not in the listing).
  for (const auto& [source, fd] : open_files.files()) {
    const std::string prefix = listing.ckpt_dir + "/";
    if (read_failure || source.compare(0, prefix.size(), prefix) != 0) continue;
    const uint32_t number = listing.file_number(source.substr(prefix.size()));
    if (number == BlockCatalog::kNotIndexed) continue;
    auto unchanged = check_read_unchanged(fd.get(), source, listing.files[number]);
    if (!unchanged) read_failure = unchanged.error();
  }
  open_files.clear();

  if (!dense.empty()) {
    auto group = create_group(file.get(), "dense", path);
    if (!group) return group.error();
    for (const auto& tensor : dense) {
      auto dataset = create_dataset(group.value().get(), tensor.name, tensor.dtype, tensor.shape, path);
      if (!dataset) return dataset.error();
      uint64_t rows = tensor.shape.empty() ? 1 : tensor.shape[0];
      auto written = write_rows(dataset.value().get(), tensor.dtype, tensor.shape, 0, rank == 0 ? rows : 0,
                                tensor.data.data(), dxpl.get(), path, "/dense/" + tensor.name);
      if (!written) return written;
    }
  }
  datasets.clear();
  sparse = Handle(-1, H5Gclose);
  std::optional<WaitingForPeers> closing(std::in_place);
  if (H5Fclose(file.get()) < 0) return output_error(path, "closing the HDF5 file failed");  // collective
  closing.reset();
  file = Handle(-1, H5Fclose);
  if (read_failure) return *read_failure;
  if (rank == 0 && fsync_file) {
    // H5Fclose leaves the data in the page cache; the export must be durable before it is published.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
      if (fd >= 0) ::close(fd);
      return output_error(path, std::string("fsync failed: ") + std::strerror(errno));
    }
    ::close(fd);
  }
  return Ok{};
}

}  // namespace recis_convert
