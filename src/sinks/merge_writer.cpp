#include "recis_convert/sinks/merge_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "recis_convert/common/checksum.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/plan/slices.h"
#include "recis_convert/transforms/row_eviction.h"

namespace recis_convert {
namespace {

constexpr uint64_t kIdChunk = 131072;  // ids read at a time (1 MiB)

}  // namespace

MergeWriter::MergeWriter(const CheckpointListing& base, const DeltaRows& deltas, MergeSettings settings)
    : base_(base), deltas_(deltas), settings_(std::move(settings)), buffer_(std::max<size_t>(settings_.buffer_bytes, 4096)) {}

Result<RowColumn> MergeWriter::base_column(const std::string& key) {
  auto block = base_.blocks.find(key);
  if (!block || block->file == BlockCatalog::kNotIndexed) {
    return bad_input(base_.ckpt_dir, "has no tensor " + quoted_name(key) + " in its index");
  }
  const std::string path = base_.ckpt_dir + "/" + base_.files[block->file].name;
  auto header = header_of(block->file);
  if (!header) return header.error();
  for (const TensorInfo& t : header.value()->tensors) {
    if (t.name == key) return RowColumn{path, key, t, header.value()->data_start() + t.begin};
  }
  return bad_input(path, "has no tensor " + quoted_name(key) + ", which the index places there");
}

Result<const SafetensorsHeader*> MergeWriter::header_of(uint32_t file) {
  auto header = headers_.find(file);
  if (header != headers_.end()) return &header->second;
  const DataFile& data = base_.files[file];
  const std::string path = base_.ckpt_dir + "/" + data.name;
  auto fd = files_.fd(path);
  if (!fd) return fd.error();
  auto read = read_safetensors_header(fd.value(), data.size, path);
  if (!read) return read.error();
  return &headers_.emplace(file, std::move(read).value()).first->second;
}

Result<const MergeWriter::PartGain*> MergeWriter::gain_of(const std::string& table, const std::string& suffix,
                                                          std::string_view slice_text) {
  const std::string key = table + ".id/" + suffix;
  auto cached = gains_.find(key);
  if (cached != gains_.end()) return &cached->second;
  auto ids = base_column(key);
  if (!ids) return ids.error();
  const RowColumn& column = ids.value();
  if (column.tensor.dtype != DType::kI64) return bad_input(column.path, "id tensor " + quoted_name(key) + " is not int64");
  auto slice = parse_slice(slice_text);
  if (!slice) return bad_input(base_.ckpt_dir, "part " + quoted_name(key) + " has no slice RecIS writes");
  auto fd = files_.fd(column.path);
  if (!fd) return fd.error();
  PartGain gain;
  const std::string steps_key = table + ".step_filter/" + suffix;
  if (settings_.older_than && base_.blocks.find(steps_key)) {  // eviction applies where the table has the slot
    auto found = base_column(steps_key);
    if (!found) return found.error();
    if (found.value().tensor.dtype != DType::kI64 || found.value().row_bytes() != 8 ||
        found.value().rows() != column.rows()) {
      return bad_input(found.value().path, "step_filter tensor " + quoted_name(steps_key) + " is not int64 [" +
                                               std::to_string(column.rows()) + ", 1] like its part's id");
    }
    gain.steps = std::move(found).value();
  }
  const std::optional<uint32_t> in_deltas = deltas_.table_index(table);
  std::vector<bool>* in_base = nullptr;
  if (in_deltas) {
    if (in_base_.size() <= *in_deltas) in_base_.resize(*in_deltas + 1);
    in_base = &in_base_[*in_deltas];
    in_base->resize(deltas_.ids_in_order(table).size());
  }
  std::vector<int64_t> chunk;
  std::vector<unsigned char> keep;
  for (uint64_t first = 0; first < column.rows(); first += kIdChunk) {
    const uint64_t n = std::min(kIdChunk, column.rows() - first);
    chunk.resize(n);
    auto read = read_exact(fd.value(), column.offset + first * 8, n * 8, chunk.data(), column.path,
                           "tensor " + quoted_name(key));
    if (!read) return read.error();
    const size_t chunk_replaced = gain.replaced.size();
    constexpr uint64_t kAhead = 16;  // lookups in flight
    for (uint64_t r = 0; in_deltas && r < n; ++r) {
      if (r + kAhead < n) deltas_.prefetch(*in_deltas, chunk[r + kAhead]);
      if (const DeltaRows::Location* at = deltas_.find(*in_deltas, chunk[r])) {
        gain.replaced.push_back(Replacement{first + r, *at});
        (*in_base)[deltas_.ordinal(*in_deltas, at)] = true;
      }
    }
    if (!gain.steps) {
      gain.kept_rows += n;
      continue;
    }
    keep.resize(n);
    auto decided = decide_rows(gain, gain.replaced.data() + chunk_replaced, gain.replaced.data() + gain.replaced.size(),
                               first, n, keep.data());
    if (!decided) return decided.error();
    for (unsigned char k : keep) gain.kept_rows += k;
  }
  gain.evicted = column.rows() - gain.kept_rows;
  const std::vector<int64_t>& delta_ids = deltas_.ids_in_order(table);
  for (size_t i = 0; i < delta_ids.size(); ++i) {
    const uint64_t residue = static_cast<uint64_t>(delta_ids[i]) % slice->size;
    if (residue >= slice->begin && residue < slice->end && !(*in_base)[i]) {
      gain.added.push_back(*deltas_.find(*in_deltas, delta_ids[i]));
    }
  }
  if (gain.steps && !gain.added.empty()) {  // the new ids eviction keeps, by their delta's step_filter
    std::vector<int64_t> steps(gain.added.size());
    std::vector<Fetch> fetches;
    for (size_t i = 0; i < gain.added.size(); ++i) {
      fetches.push_back(Fetch{gain.added[i], reinterpret_cast<char*>(&steps[i])});
    }
    auto fetched = fetch_rows("step_filter", fetches, 8);
    if (!fetched) return fetched.error();
    size_t kept = 0;
    for (size_t i = 0; i < gain.added.size(); ++i) {
      if (kept_by_step(settings_.global_step, steps[i], *settings_.older_than)) gain.added[kept++] = gain.added[i];
    }
    gain.evicted += gain.added.size() - kept;
    gain.added.resize(kept);
  }
  return &gains_.emplace(key, std::move(gain)).first->second;
}

Status MergeWriter::decide_rows(const PartGain& gain, const Replacement* replaced, const Replacement* replaced_end,
                                uint64_t first, uint64_t n, unsigned char* keep) {
  const RowColumn& steps = *gain.steps;
  std::vector<int64_t> values(n);
  auto fd = files_.fd(steps.path);
  if (!fd) return fd.error();
  auto read = read_exact(fd.value(), steps.offset + first * 8, n * 8, values.data(), steps.path,
                         "tensor " + quoted_name(steps.key));
  if (!read) return read;
  std::vector<Fetch> fetches;  // a replaced row's step is its delta's
  for (; replaced != replaced_end && replaced->row < first + n; ++replaced) {
    fetches.push_back(Fetch{replaced->at, reinterpret_cast<char*>(&values[replaced->row - first])});
  }
  auto fetched = fetch_rows("step_filter", fetches, 8);
  if (!fetched) return fetched;
  for (uint64_t r = 0; r < n; ++r) keep[r] = kept_by_step(settings_.global_step, values[r], *settings_.older_than);
  return Ok{};
}

Status MergeWriter::append(int out, const std::string& out_path, const char* data, size_t size, PieceChecksum& checksum) {
  checksum.update(data, size);
  return write_all(out, data, size, out_path);
}

Status MergeWriter::fetch_rows(const std::string& slot, const std::vector<Fetch>& fetches, uint64_t row_bytes) {
  const uint64_t max_run = std::max<uint64_t>(1, (1u << 20) / row_bytes);
  for (size_t i = 0; i < fetches.size();) {
    const DeltaRows::Location& head = fetches[i].at;
    size_t j = i + 1;
    while (j < fetches.size() && j - i < max_run && fetches[j].at.part == head.part &&
           fetches[j].at.row == head.row + (j - i)) {
      ++j;
    }
    const DeltaRows::Part& part = deltas_.part(head.part);
    auto column = part.slots.find(slot);
    if (column == part.slots.end()) {
      return bad_input(part.slots.at("id").path, "the part of " + quoted_name(part.slots.at("id").key) + " has no slot " +
                                                     quoted_name(slot) + ", which the base exports");
    }
    const RowColumn& c = column->second;
    if (c.row_bytes() != row_bytes) {
      return bad_input(c.path, "tensor " + quoted_name(c.key) + " has rows of " + std::to_string(c.row_bytes()) +
                                   " bytes, the base's have " + std::to_string(row_bytes));
    }
    auto fd = files_.fd(c.path);
    if (!fd) return fd.error();
    run_.resize((j - i) * row_bytes);
    auto read = read_exact(fd.value(), c.offset + head.row * row_bytes, run_.size(), run_.data(), c.path,
                           "tensor " + quoted_name(c.key) + " rows " + std::to_string(head.row) + ".." +
                               std::to_string(head.row + (j - i)));
    if (!read) return read;
    for (size_t k = i; k < j; ++k) std::memcpy(fetches[k].into, run_.data() + (k - i) * row_bytes, row_bytes);
    i = j;
  }
  return Ok{};
}

Status MergeWriter::write_sparse(int in, const RowColumn& column, const std::string& slot, const PartGain& gain,
                                 int out, const std::string& out_path, PieceChecksum& checksum) {
  const uint64_t row_bytes = column.row_bytes();
  if (row_bytes == 0) return Ok{};
  const uint64_t chunk_rows = std::max<uint64_t>(1, std::min<uint64_t>(buffer_.size() / row_bytes, kIdChunk));
  if (buffer_.size() < row_bytes) buffer_.resize(row_bytes);
  std::vector<unsigned char> keep;
  std::vector<Fetch> fetches;
  const Replacement* replaced = gain.replaced.data();
  const Replacement* const replaced_end = replaced + gain.replaced.size();
  // the base's rows, each the newest delta's row where a delta has its id
  for (uint64_t first = 0; first < column.rows(); first += chunk_rows) {
    const uint64_t n = std::min(chunk_rows, column.rows() - first);
    auto read = read_exact(in, column.offset + first * row_bytes, n * row_bytes, buffer_.data(), column.path,
                           "tensor " + quoted_name(column.key));
    if (!read) return read;
    const Replacement* const chunk_replaced = replaced;
    fetches.clear();
    for (; replaced != replaced_end && replaced->row < first + n; ++replaced) {
      fetches.push_back(Fetch{replaced->at, buffer_.data() + (replaced->row - first) * row_bytes});
    }
    auto fetched = fetch_rows(slot, fetches, row_bytes);
    if (!fetched) return fetched;
    uint64_t kept = n;
    if (gain.steps) {
      keep.resize(n);
      auto decided = decide_rows(gain, chunk_replaced, replaced_end, first, n, keep.data());
      if (!decided) return decided;
      kept = compact_rows(reinterpret_cast<unsigned char*>(buffer_.data()), row_bytes, keep.data(), n);
    }
    auto written = append(out, out_path, buffer_.data(), kept * row_bytes, checksum);
    if (!written) return written;
  }
  // then the rows the part gains, in order
  for (uint64_t first = 0; first < gain.added.size(); first += chunk_rows) {
    const uint64_t n = std::min<uint64_t>(chunk_rows, gain.added.size() - first);
    fetches.clear();
    for (uint64_t r = 0; r < n; ++r) fetches.push_back(Fetch{gain.added[first + r], buffer_.data() + r * row_bytes});
    auto fetched = fetch_rows(slot, fetches, row_bytes);
    if (!fetched) return fetched;
    auto written = append(out, out_path, buffer_.data(), n * row_bytes, checksum);
    if (!written) return written;
  }
  return Ok{};
}

Result<FileResult> MergeWriter::write(size_t index) {
  const DataFile& file = base_.files[index];
  const std::string path = base_.ckpt_dir + "/" + file.name;
  auto in = files_.fd(path);
  if (!in) return in.error();
  auto header = header_of(static_cast<uint32_t>(index));
  if (!header) return header.error();
  const SafetensorsHeader& h = *header.value();

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
    if (!key) return bad_input(path, "tensor " + quoted_name(t.name) + " is not indexed in this file");
    Planned p{RowColumn{path, t.name, t, h.data_start() + t.begin}, "", "", "", nullptr};
    TensorInfo out = t;
    if (key->sparse) {
      p.table = key->sparse_key.child;
      p.slot = key->sparse_key.slot;
      p.suffix = t.name.substr(t.name.rfind('/') + 1);
      auto gain = gain_of(p.table, p.suffix, key->sparse_key.slice);
      if (!gain) return gain.error();
      p.gain = gain.value();
      if (out.shape.empty()) return bad_input(path, "sparse tensor " + quoted_name(t.name) + " has no rows");
      out.shape[0] = p.gain->kept_rows + p.gain->added.size();
      if (p.slot == "id" && p.gain->steps) evicted_[p.table] += p.gain->evicted;  // once: the id is in one file
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
  PieceChecksum checksum(settings_.piece_bytes);
  auto written = append(out.get(), out_path, preamble.data(), preamble.size(), checksum);
  if (!written) return written.error();
  for (const Planned& p : planned) {
    if (p.gain) {
      auto sparse = write_sparse(in.value(), p.source, p.slot, *p.gain, out.get(), out_path, checksum);
      if (!sparse) return sparse.error();
      continue;
    }
    auto fd = files_.fd(p.source.path);
    if (!fd) return fd.error();
    for (uint64_t done = 0; done < p.source.tensor.nbytes();) {
      const uint64_t n = std::min<uint64_t>(buffer_.size(), p.source.tensor.nbytes() - done);
      auto read = read_exact(fd.value(), p.source.offset + done, n, buffer_.data(), p.source.path,
                             "tensor " + quoted_name(p.source.key));
      if (!read) return read.error();
      auto copied = append(out.get(), out_path, buffer_.data(), n, checksum);
      if (!copied) return copied.error();
      done += n;
    }
  }
  if (settings_.writeback) {  // fsynced on the queue's thread while the next file is written
    auto queued = settings_.writeback->add(out.release(), out_path);
    if (!queued) return queued.error();
  }
  result.written = true;
  result.output_bytes = preamble.size() + next;
  result.checksum = checksum.digest();
  return result;
}

}  // namespace recis_convert
