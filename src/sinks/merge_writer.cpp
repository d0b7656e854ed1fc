#include "recis_convert/sinks/merge_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "recis_convert/common/checksum.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/plan/slices.h"
#include "recis_convert/transforms/row_eviction.h"

namespace recis_convert {
namespace {

constexpr uint64_t kIdChunk = 131072;  // ids read at a time (1 MiB)

std::string quoted(const std::string& s) { return nlohmann::json(s).dump(); }

}  // namespace

MergeWriter::MergeWriter(const CheckpointListing& base, const DeltaRows& deltas, MergeSettings settings)
    : base_(base), deltas_(deltas), settings_(std::move(settings)), buffer_(std::max<size_t>(settings_.buffer_bytes, 4096)) {}

Result<int> MergeWriter::opened(const std::string& path) {
  auto& fd = files_[path];
  if (!fd) {
    fd = std::make_unique<FileDescriptor>(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd->get() < 0) {
      files_.erase(path);
      return bad_input(path, std::string("cannot open: ") + std::strerror(errno));
    }
  }
  return fd->get();
}

Result<RowColumn> MergeWriter::base_column(const std::string& key) {
  auto block = base_.blocks.find(key);
  if (!block || block->file == BlockCatalog::kNotIndexed) {
    return bad_input(base_.ckpt_dir, "has no tensor " + quoted(key) + " in its index");
  }
  const DataFile& file = base_.files[block->file];
  const std::string path = base_.ckpt_dir + "/" + file.name;
  auto header = headers_.find(block->file);
  if (header == headers_.end()) {
    auto fd = opened(path);
    if (!fd) return fd.error();
    auto read = read_safetensors_header(fd.value(), file.size, path);
    if (!read) return read.error();
    header = headers_.emplace(block->file, std::move(read).value()).first;
  }
  for (const TensorInfo& t : header->second.tensors) {
    if (t.name == key) return RowColumn{path, key, t, header->second.data_start() + t.begin};
  }
  return bad_input(path, "has no tensor " + quoted(key) + ", which the index places there");
}

Result<const MergeWriter::PartGain*> MergeWriter::gain_of(const std::string& table, const std::string& suffix,
                                                          std::string_view slice_text) {
  const std::string key = table + ".id/" + suffix;
  auto cached = gains_.find(key);
  if (cached != gains_.end()) return &cached->second;
  auto ids = base_column(key);
  if (!ids) return ids.error();
  const RowColumn& column = ids.value();
  if (column.tensor.dtype != DType::kI64) return bad_input(column.path, "id tensor " + quoted(key) + " is not int64");
  auto slice = parse_slice(slice_text);
  if (!slice) return bad_input(base_.ckpt_dir, "part " + quoted(key) + " has no slice RecIS writes");
  auto fd = opened(column.path);
  if (!fd) return fd.error();
  PartGain gain;
  std::optional<RowColumn> steps;  // with --evict-older-than, where the table has a step_filter slot
  const std::string steps_key = table + ".step_filter/" + suffix;
  if (settings_.older_than && base_.blocks.find(steps_key)) {
    auto found = base_column(steps_key);
    if (!found) return found.error();
    if (found.value().tensor.dtype != DType::kI64 || found.value().row_bytes() != 8 ||
        found.value().rows() != column.rows()) {
      return bad_input(found.value().path, "step_filter tensor " + quoted(steps_key) + " is not int64 [" +
                                               std::to_string(column.rows()) + ", 1] like its part's id");
    }
    steps = std::move(found).value();
    gain.evicting = true;
  }
  std::unordered_set<int64_t> present;  // the deltas' ids this part has: at most the deltas' ids
  std::vector<int64_t> chunk;
  std::vector<unsigned char> keep;
  for (uint64_t first = 0; first < column.rows(); first += kIdChunk) {
    const uint64_t n = std::min(kIdChunk, column.rows() - first);
    chunk.resize(n);
    auto read = read_exact(fd.value(), column.offset + first * 8, n * 8, chunk.data(), column.path,
                           "tensor " + quoted(key));
    if (!read) return read.error();
    for (int64_t id : chunk) {
      if (deltas_.find(table, id)) present.insert(id);
    }
    if (!steps) {
      gain.kept_rows += n;
      continue;
    }
    keep.resize(n);
    auto decided = decide_rows(table, *steps, chunk.data(), first, n, keep.data());
    if (!decided) return decided.error();
    for (unsigned char k : keep) gain.kept_rows += k;
  }
  gain.evicted = column.rows() - gain.kept_rows;
  for (int64_t id : deltas_.ids_in_order(table)) {
    const uint64_t residue = static_cast<uint64_t>(id) % slice->size;
    if (residue < slice->begin || residue >= slice->end || present.count(id)) continue;
    if (steps) {
      auto step = delta_step(table, *deltas_.find(table, id));
      if (!step) return step.error();
      if (!kept_by_step(settings_.global_step, step.value(), *settings_.older_than)) {
        ++gain.evicted;
        continue;
      }
    }
    gain.new_ids.push_back(id);
  }
  return &gains_.emplace(key, std::move(gain)).first->second;
}

Result<int64_t> MergeWriter::delta_step(const std::string& table, const DeltaRows::Location& at) {
  const DeltaRows::Part& part = deltas_.part(at.part);
  auto column = part.slots.find("step_filter");
  if (column == part.slots.end()) {
    return bad_input(part.slots.at("id").path, "the part of " + quoted(part.slots.at("id").key) +
                                                   " has no step_filter, which the base's " + quoted(table) + " has");
  }
  int64_t step = 0;
  auto fd = opened(column->second.path);
  if (!fd) return fd.error();
  auto read = read_exact(fd.value(), column->second.offset + at.row * 8, 8, &step, column->second.path,
                         "tensor " + quoted(column->second.key) + " row " + std::to_string(at.row));
  if (!read) return read.error();
  return step;
}

Status MergeWriter::decide_rows(const std::string& table, const RowColumn& steps, const int64_t* ids, uint64_t first,
                                uint64_t n, unsigned char* keep) {
  std::vector<int64_t> values(n);
  auto fd = opened(steps.path);
  if (!fd) return fd.error();
  auto read = read_exact(fd.value(), steps.offset + first * 8, n * 8, values.data(), steps.path,
                         "tensor " + quoted(steps.key));
  if (!read) return read;
  for (uint64_t r = 0; r < n; ++r) {
    if (const DeltaRows::Location* at = deltas_.find(table, ids[r])) {
      auto step = delta_step(table, *at);
      if (!step) return step.error();
      values[r] = step.value();
    }
    keep[r] = kept_by_step(settings_.global_step, values[r], *settings_.older_than) ? 1 : 0;
  }
  return Ok{};
}

Status MergeWriter::append(int out, const std::string& out_path, const char* data, size_t size, Checksum& checksum) {
  checksum.update(data, size);
  return write_all(out, data, size, out_path);
}

Status MergeWriter::read_delta_row(const std::string& slot, const DeltaRows::Location& at, uint64_t row_bytes,
                                   char* into) {
  const DeltaRows::Part& part = deltas_.part(at.part);
  auto column = part.slots.find(slot);
  if (column == part.slots.end()) {
    return bad_input(part.slots.at("id").path, "the part of " + quoted(part.slots.at("id").key) + " has no slot " +
                                                   quoted(slot) + ", which the base exports");
  }
  if (column->second.row_bytes() != row_bytes) {
    return bad_input(column->second.path, "tensor " + quoted(column->second.key) + " has rows of " +
                                              std::to_string(column->second.row_bytes()) +
                                              " bytes, the base's have " + std::to_string(row_bytes));
  }
  auto fd = opened(column->second.path);
  if (!fd) return fd.error();
  return read_exact(fd.value(), column->second.offset + at.row * row_bytes, row_bytes, into, column->second.path,
                    "tensor " + quoted(column->second.key) + " row " + std::to_string(at.row));
}

Status MergeWriter::write_sparse(int in, const RowColumn& column, const std::string& table, const std::string& slot,
                                 const RowColumn& ids, const PartGain& gain, int out, const std::string& out_path,
                                 Checksum& checksum) {
  const uint64_t row_bytes = column.row_bytes();
  if (row_bytes == 0) return Ok{};
  const uint64_t chunk_rows = std::max<uint64_t>(1, std::min<uint64_t>(buffer_.size() / row_bytes, kIdChunk));
  if (buffer_.size() < row_bytes) buffer_.resize(row_bytes);
  auto ids_fd = opened(ids.path);
  if (!ids_fd) return ids_fd.error();
  std::optional<RowColumn> steps;  // evicting: the part's step_filter, to decide each chunk again
  if (gain.evicting) {
    auto found = base_column(table + ".step_filter/" + ids.key.substr(ids.key.rfind('/') + 1));
    if (!found) return found.error();
    steps = std::move(found).value();
  }
  std::vector<int64_t> chunk_ids;
  std::vector<unsigned char> keep;
  // the base's rows, each replaced by the newest delta's row of its id
  for (uint64_t first = 0; first < column.rows(); first += chunk_rows) {
    const uint64_t n = std::min(chunk_rows, column.rows() - first);
    auto read = read_exact(in, column.offset + first * row_bytes, n * row_bytes, buffer_.data(), column.path,
                           "tensor " + quoted(column.key));
    if (!read) return read;
    chunk_ids.resize(n);
    read = read_exact(ids_fd.value(), ids.offset + first * 8, n * 8, chunk_ids.data(), ids.path,
                      "tensor " + quoted(ids.key));
    if (!read) return read;
    for (uint64_t r = 0; r < n; ++r) {
      const DeltaRows::Location* at = deltas_.find(table, chunk_ids[r]);
      if (!at) continue;
      auto replaced = read_delta_row(slot, *at, row_bytes, buffer_.data() + r * row_bytes);
      if (!replaced) return replaced;
    }
    uint64_t kept = n;
    if (steps) {
      keep.resize(n);
      auto decided = decide_rows(table, *steps, chunk_ids.data(), first, n, keep.data());
      if (!decided) return decided;
      kept = compact_rows(reinterpret_cast<unsigned char*>(buffer_.data()), row_bytes, keep.data(), n);
    }
    auto written = append(out, out_path, buffer_.data(), kept * row_bytes, checksum);
    if (!written) return written;
  }
  // then the ids the part gains, in order
  for (uint64_t first = 0; first < gain.new_ids.size(); first += chunk_rows) {
    const uint64_t n = std::min<uint64_t>(chunk_rows, gain.new_ids.size() - first);
    for (uint64_t r = 0; r < n; ++r) {
      auto read = read_delta_row(slot, *deltas_.find(table, gain.new_ids[first + r]), row_bytes,
                                 buffer_.data() + r * row_bytes);
      if (!read) return read;
    }
    auto written = append(out, out_path, buffer_.data(), n * row_bytes, checksum);
    if (!written) return written;
  }
  return Ok{};
}

Result<FileResult> MergeWriter::write(size_t index) {
  const DataFile& file = base_.files[index];
  const std::string path = base_.ckpt_dir + "/" + file.name;
  auto in = opened(path);
  if (!in) return in.error();
  auto header = read_safetensors_header(in.value(), file.size, path);
  if (!header) return header.error();
  const SafetensorsHeader& h = header.value();

  // 1. the output header: each sparse tensor gains its part's new rows; a dense one is the newest delta's
  struct Planned {
    RowColumn source;
    std::string table, slot, suffix;  // sparse
    const PartGain* gain = nullptr;   // sparse
  };
  std::vector<Planned> planned;
  FileResult result;
  result.name = file.name;
  result.source_bytes = file.size;
  uint64_t next = 0;
  for (const TensorInfo& t : h.tensors) {
    auto key = classify_key(t.name, base_.blocks);
    if (!key) return bad_input(path, "tensor " + quoted(t.name) + " is not indexed in this file");
    Planned p{RowColumn{path, t.name, t, h.data_start() + t.begin}, "", "", "", nullptr};
    TensorInfo out = t;
    if (key->sparse) {
      p.table = key->sparse_key.child;
      p.slot = key->sparse_key.slot;
      p.suffix = t.name.substr(t.name.rfind('/') + 1);
      auto gain = gain_of(p.table, p.suffix, key->sparse_key.slice);
      if (!gain) return gain.error();
      p.gain = gain.value();
      if (out.shape.empty()) return bad_input(path, "sparse tensor " + quoted(t.name) + " has no rows");
      out.shape[0] = p.gain->kept_rows + p.gain->new_ids.size();
      if (p.slot == "id" && p.gain->evicting) evicted_[p.table] += p.gain->evicted;  // once: the id is in one file
    } else if (const RowColumn* newer = deltas_.dense(t.name)) {
      p.source = *newer;
      out = newer->tensor;
    }
    const uint64_t bytes = p.gain ? out.shape[0] * p.source.row_bytes() : p.source.tensor.nbytes();
    out.begin = next;
    out.end = next + bytes;
    next = out.end;
    result.kept.push_back(out);
    planned.push_back(std::move(p));
  }
  const std::string preamble = serialize_recis_header(result.kept, h.metadata);

  // 2. the bytes, front to back
  const std::string out_path = settings_.staging_dir + "/" + file.name;
  FileDescriptor out(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (out.get() < 0) return output_error(out_path, std::string("cannot create: ") + std::strerror(errno));
  Checksum checksum;
  auto written = append(out.get(), out_path, preamble.data(), preamble.size(), checksum);
  if (!written) return written.error();
  for (const Planned& p : planned) {
    if (p.gain) {
      auto ids = base_column(p.table + ".id/" + p.suffix);
      if (!ids) return ids.error();
      auto sparse = write_sparse(in.value(), p.source, p.table, p.slot, ids.value(), *p.gain, out.get(), out_path,
                                 checksum);
      if (!sparse) return sparse.error();
      continue;
    }
    auto fd = opened(p.source.path);
    if (!fd) return fd.error();
    for (uint64_t done = 0; done < p.source.tensor.nbytes();) {
      const uint64_t n = std::min<uint64_t>(buffer_.size(), p.source.tensor.nbytes() - done);
      auto read = read_exact(fd.value(), p.source.offset + done, n, buffer_.data(), p.source.path,
                             "tensor " + quoted(p.source.key));
      if (!read) return read.error();
      auto copied = append(out.get(), out_path, buffer_.data(), n, checksum);
      if (!copied) return copied.error();
      done += n;
    }
  }
  if (settings_.fsync && ::fsync(out.get()) != 0) {
    return output_error(out_path, std::string("fsync: ") + std::strerror(errno));
  }
  result.written = true;
  result.output_bytes = preamble.size() + next;
  result.checksum = checksum.digest();
  return result;
}

}  // namespace recis_convert
