#include "recis_convert/sinks/reshard_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "recis_convert/plan/slices.h"
#include "recis_convert/transforms/row_selection.h"
#include "recis_convert/sources/column_reader.h"

namespace recis_convert {
namespace {

// Copies row r of `rows` to grouped[fill[slot_of[r]]++], in row order (a stable counting sort's scatter). The
// common row sizes get a memcpy of constant size, which compiles to a few moves instead of a call per row.
template <size_t kBytes>
void group_fixed(const unsigned char* rows, const uint32_t* slot_of, uint64_t n, uint64_t* fill,
                 unsigned char* grouped) {
  for (uint64_t r = 0; r < n; ++r) std::memcpy(grouped + fill[slot_of[r]]++ * kBytes, rows + r * kBytes, kBytes);
}

}  // namespace

void group_rows(const unsigned char* rows, uint64_t row_bytes, const uint32_t* slot_of, uint64_t n, uint64_t* fill,
                unsigned char* grouped) {
  switch (row_bytes) {
    case 4: return group_fixed<4>(rows, slot_of, n, fill, grouped);
    case 8: return group_fixed<8>(rows, slot_of, n, fill, grouped);
    case 16: return group_fixed<16>(rows, slot_of, n, fill, grouped);
    case 32: return group_fixed<32>(rows, slot_of, n, fill, grouped);
    case 64: return group_fixed<64>(rows, slot_of, n, fill, grouped);
    default:
      for (uint64_t r = 0; r < n; ++r) {
        std::memcpy(grouped + fill[slot_of[r]]++ * row_bytes, rows + r * row_bytes, row_bytes);
      }
  }
}


void PlacementIndex::set(const std::vector<Placement>& targets) {
  for (uint32_t target : set_) index_[target] = kNone;
  set_.clear();
  for (size_t t = 0; t < targets.size(); ++t) {
    index_[targets[t].target] = static_cast<uint32_t>(t);
    set_.push_back(targets[t].target);
  }
}

std::optional<uint64_t> PlacementIndex::look_up(const uint32_t* targets, uint64_t n, uint32_t* index) const {
  for (uint64_t r = 0; r < n; ++r) {
    index[r] = index_[targets[r]];
    if (index[r] == kNone) return r;
  }
  return std::nullopt;
}

Error unplaced_row(const std::string& path, const std::string& what, uint64_t row) {
  return bad_input(path, what + " row " + std::to_string(row) +
                             " has an id the count pass did not see there: the file changed during the run");
}

Status create_reshard_files(const ReshardLayout& layout, const std::string& staging_dir, bool keep) {
  for (const ReshardFile& f : layout.files) {
    auto created = create_sized_file(staging_dir + "/" + f.name, f.preamble, f.bytes(), keep);
    if (!created) return created;
  }
  return Ok{};
}

std::string ReshardOutputFiles::path(uint32_t target) const { return path_of_(target); }

Result<int> ReshardOutputFiles::fd(uint32_t target) {
  auto open = open_.find(target);
  if (open != open_.end()) return open->second->get();
  if (open_.size() >= kMaxOpen) {
    auto closed = close_all();
    if (!closed) return closed.error();
  }
  const std::string name = path(target);
  auto fd = std::make_unique<FileDescriptor>(::open(name.c_str(), O_WRONLY | O_CLOEXEC));
  if (fd->get() < 0) return output_error(name, std::string("cannot open: ") + std::strerror(errno));
  const int raw = fd->get();
  open_.emplace(target, std::move(fd));
  return raw;
}

Status ReshardOutputFiles::close_all() {
  Status status = Ok{};
  for (auto& [target, fd] : open_) {
    if (::close(fd->release()) != 0 && status) {
      status = output_error(path(target), std::string("close failed: ") + std::strerror(errno));
    }
  }
  open_.clear();
  return status;
}

RowRouter::RowRouter(const std::vector<Placement>& targets, ReshardOutputFiles& files, WritebackStarter* writeback,
                     bool checksum)
    : targets_(targets), files_(files), writeback_(writeback), count_(targets.size()), start_(targets.size()) {
  for (const Placement& p : targets) cursor_.push_back(p.offset);
  started_ = cursor_;
  for (size_t t = 0; checksum && t < targets.size(); ++t) checksums_.push_back(std::make_unique<Checksum>());
}

Status RowRouter::write(const unsigned char* rows, uint64_t row_bytes, const uint32_t* index, uint64_t n,
                        unsigned char* scratch) {
  std::fill(count_.begin(), count_.end(), 0);
  for (uint64_t r = 0; r < n; ++r) ++count_[index[r]];
  const unsigned char* from = rows;
  if (std::count_if(count_.begin(), count_.end(), [](uint64_t c) { return c > 0; }) > 1) {
    uint64_t next = 0;
    for (size_t t = 0; t < targets_.size(); ++t) {
      start_[t] = next;
      next += count_[t];
    }
    fill_ = start_;
    group_rows(rows, row_bytes, index, n, fill_.data(), scratch);
    from = scratch;
  } else {
    std::fill(start_.begin(), start_.end(), 0);
  }
  for (size_t t = 0; t < targets_.size(); ++t) {
    if (count_[t] == 0) continue;
    auto dst = files_.fd(targets_[t].target);
    if (!dst) return dst.error();
    auto written = pwrite_all(dst.value(), from + start_[t] * row_bytes, count_[t] * row_bytes, cursor_[t],
                              files_.path(targets_[t].target));
    if (!written) return written;
    if (!checksums_.empty()) checksums_[t]->update(from + start_[t] * row_bytes, count_[t] * row_bytes);
    cursor_[t] += count_[t] * row_bytes;
    unstarted_ += count_[t] * row_bytes;
  }
  if (unstarted_ >= kWritebackBytes) finish();
  return Ok{};
}

void RowRouter::finish() {
  if (writeback_) {
    for (size_t t = 0; t < targets_.size(); ++t) {
      if (cursor_[t] > started_[t]) writeback_->start(files_.path(targets_[t].target), started_[t], cursor_[t] - started_[t]);
    }
  }
  started_ = cursor_;
  unstarted_ = 0;
}

Result<FileResult> ReshardWriter::write_file(const CheckpointListing& listing, const DataFile& file,
                                             const RowTransformChain& transforms, const PartSelections* selections,
                                             bool dry_run, const TensorRowsOf& tensor_rows) {
  const std::string path = listing.ckpt_dir + "/" + file.name;
  auto opened = open_input_file(path);
  if (!opened) return opened.error();
  FileDescriptor src = std::move(opened).value();
  auto decided = decide_data_file(src.get(), listing, file, transforms, selections, tensor_rows);
  if (!decided) return decided.error();
  const FileDecision& d = decided.value();
  FileResult result;
  result.name = file.name;
  result.source_bytes = file.size;
  for (size_t i = 0; i < d.header.tensors.size(); ++i) {
    const TensorInfo& tensor = d.header.tensors[i];
    if (!d.keep[i]) {
      result.dropped.push_back(tensor);
      continue;
    }
    if (dry_run) continue;
    const auto internal = [&](const char* what) {
      return Error{ExitCode::kInternal, path, std::string("the reshard plan has no ") + what + " for tensor " +
                                                  nlohmann::json(tensor.name).dump()};
    };
    const std::optional<RowsFrom>& from = d.from[i];  // rows that stand in for the file's own (a merge's)
    if (!d.keys[i].sparse) {
      auto offset = share_.dense.find(tensor.name);
      if (offset == share_.dense.end()) return internal("offset");
      auto written = from ? write_dense(*from, offset->second)
                          : write_dense(src.get(), path, tensor, d.header.data_start(), offset->second);
      if (!written) return written.error();
      continue;
    }
    auto placement = share_.sparse.find(tensor.name);
    if (placement == share_.sparse.end()) return internal("placement");
    auto written = write_sparse(src.get(), path, tensor, d.header.data_start(), placement->second, d.rows[i].get(),
                                d.selections[i], from ? &*from : nullptr);
    if (!written) return written.error();
  }
  if (!dry_run) {
    auto unchanged = check_read_unchanged(src.get(), path, file);
    if (!unchanged) return unchanged.error();
  }
  return result;
}

Status ReshardWriter::write_dense(int src_fd, const std::string& src_path, const TensorInfo& tensor,
                                  uint64_t data_start, uint64_t offset) {
  auto dst = files_.fd(0);
  if (!dst) return dst.error();
  const std::string what = "tensor " + nlohmann::json(tensor.name).dump();
  for (uint64_t done = 0; done < tensor.nbytes();) {
    const uint64_t n = std::min<uint64_t>(buffer_.size(), tensor.nbytes() - done);
    auto read = read_exact(src_fd, data_start + tensor.begin + done, n, buffer_.data(), src_path, what);
    if (!read) return read;
    auto written = pwrite_all(dst.value(), buffer_.data(), n, offset + done, files_.path(0));
    if (!written) return written;
    done += n;
    if (progress_) progress_(n);
  }
  return Ok{};
}

// A dense tensor from elsewhere (a merge's newest delta's scalar) is one row, read whole as the copy engine
// reads it.
Status ReshardWriter::write_dense(const RowsFrom& rows, uint64_t offset) {
  auto dst = files_.fd(0);
  if (!dst) return dst.error();
  const uint64_t bytes = rows.reader->row_bytes(0);
  if (buffer_.size() < bytes) buffer_.resize(bytes);
  unsigned char* into = reinterpret_cast<unsigned char*>(buffer_.data());
  auto read = rows.reader->read(0, 1, nullptr, &into);
  if (!read) return read;
  auto written = pwrite_all(dst.value(), buffer_.data(), bytes, offset, files_.path(0));
  if (!written) return written;
  if (progress_) progress_(bytes);
  return Ok{};
}

// The tensor's rows through the row loop, its part's ids beside them (pipeline/row_loop.h): the evicted rows left
// out, the rest rewritten, then grouped by target and written at each target's cursor (RowRouter).
Status ReshardWriter::write_sparse(int src_fd, const std::string& src_path, const TensorInfo& file_tensor,
                                   uint64_t data_start, const TensorPlacement& placement, const SlotRows* rewrite,
                                   const std::shared_ptr<const PartSelection>& selection, const RowsFrom* from) {
  const TensorInfo& tensor = from ? from->tensor : file_tensor;
  const uint64_t rows = tensor.shape.empty() ? 0 : tensor.shape[0];
  if (rows == 0) return Ok{};
  const uint64_t in_row = tensor.nbytes() / rows;
  const uint64_t out_row = rewrite ? rewrite->output().row_bytes() : in_row;
  const DecisionColumn& ids = placement.ids;
  if (ids.rows != rows || ids.dtype != DType::kI64 || ids.row_elements != 1) {
    return bad_input(src_path, "tensor " + nlohmann::json(tensor.name).dump() + " has " + std::to_string(rows) +
                                   " rows but its part's " + nlohmann::json(ids.tensor).dump() + " has " +
                                   std::to_string(ids.rows));
  }
  auto opened = RowSelector::open_if(selection.get());
  if (!opened) return opened.error();
  std::optional<RowSelector> selector = std::move(opened).value();
  const std::vector<Placement>& targets = placement.targets;
  RowRouter router(targets, files_, writeback_.get());
  placements_.set(targets);
  // the rows beside their part's ids: the file's, or a merge's (whose ids are merged alike)
  std::unique_ptr<RowReader> reader;
  FileDescriptor ids_fd(-1);
  if (from) {
    if (!from->ids) {
      return Error{ExitCode::kInternal, src_path, "tensor " + nlohmann::json(tensor.name).dump() +
                                                      " has rows from elsewhere without their ids"};
    }
    reader = std::make_unique<SideBySide>(std::vector<std::shared_ptr<RowReader>>{from->reader, from->ids});
  } else {
    auto opened_ids = open_input_file(ids.path);
    if (!opened_ids) return opened_ids.error();
    ids_fd = std::move(opened_ids).value();
    reader = std::make_unique<ColumnReader>(std::vector<FileColumn>{
        FileColumn{src_fd, src_path, "tensor " + nlohmann::json(tensor.name).dump(), data_start + tensor.begin,
                   in_row},
        FileColumn{ids_fd.get(), ids.path, "tensor " + nlohmann::json(ids.tensor).dump(), ids.offset,
                   sizeof(int64_t)}});
  }
  RowRun run;
  run.end = rows;
  run.slots = {OutputSlot{0, rewrite}};
  run.selector = selector ? &*selector : nullptr;
  run.id_column = 1;
  run.route = &part_of_;
  run.scratch_row_bytes = out_row;  // the rows grouped by target
  auto done = row_loop_.run(*reader, run, [&](const RowChunk& chunk) -> Status {
    slot_of_.resize(chunk.rows);
    if (auto unplaced = placements_.look_up(chunk.targets, chunk.rows, slot_of_.data())) {
      return unplaced_row(ids.path, "tensor " + nlohmann::json(ids.tensor).dump(), chunk.first + *unplaced);
    }
    auto routed = router.write(chunk.slots[0], out_row, slot_of_.data(), chunk.rows, chunk.scratch);
    if (!routed) return routed;
    if (progress_) progress_(chunk.source_rows * in_row);
    return Ok{};
  });
  if (!done) return done.error();
  router.finish();
  return Ok{};
}

}  // namespace recis_convert
