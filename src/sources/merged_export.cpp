#include "recis_convert/sources/merged_export.h"

#include <algorithm>

#include "recis_convert/common/file_io.h"
#include "recis_convert/plan/slices.h"
#include "recis_convert/transforms/kept_row_bitmap.h"
#include "recis_convert/transforms/row_eviction.h"

namespace recis_convert {
namespace {

constexpr uint64_t kIdChunk = 131072;  // ids (or step_filter rows) read at a time (1 MiB)

}  // namespace

MergedExport::MergedExport(const CheckpointListing& base, const DeltaRows& deltas, MergeSettings settings)
    : base_(base), deltas_(deltas), settings_(std::move(settings)) {}

Result<RowColumn> MergedExport::base_column(const std::string& key) {
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

Result<const SafetensorsHeader*> MergedExport::header_of(uint32_t file) {
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

Result<const MergedExport::MergedPart*> MergedExport::merged_part(const std::string& table, const std::string& suffix,
                                                                std::string_view slice_text) {
  const std::string key = table + ".id/" + suffix;
  auto cached = parts_.find(key);
  if (cached != parts_.end()) return &cached->second;
  auto ids = base_column(key);
  if (!ids) return ids.error();
  const RowColumn& column = ids.value();
  if (column.tensor.dtype != DType::kI64) return bad_input(column.path, "id tensor " + quoted_name(key) + " is not int64");
  auto slice = parse_slice(slice_text);
  if (!slice) return bad_input(base_.ckpt_dir, "part " + quoted_name(key) + " has no slice RecIS writes");
  auto fd = files_.fd(column.path);
  if (!fd) return fd.error();
  MergedPart part;
  PartMerge& merge = part.merge;
  merge.base_rows = column.rows();
  // the base rows the deltas replace
  const std::optional<uint32_t> in_deltas = deltas_.table_index(table);
  std::vector<bool>* in_base = nullptr;
  if (in_deltas) {
    if (in_base_.size() <= *in_deltas) in_base_.resize(*in_deltas + 1);
    in_base = &in_base_[*in_deltas];
    in_base->resize(deltas_.ids_in_order(table).size());
  }
  std::vector<int64_t> chunk;
  for (uint64_t first = 0; in_deltas && first < column.rows(); first += kIdChunk) {
    const uint64_t n = std::min(kIdChunk, column.rows() - first);
    chunk.resize(n);
    auto read = read_exact(fd.value(), column.offset + first * 8, n * 8, chunk.data(), column.path,
                           "tensor " + quoted_name(key));
    if (!read) return read.error();
    constexpr uint64_t kAhead = 16;  // lookups in flight
    for (uint64_t r = 0; r < n; ++r) {
      if (r + kAhead < n) deltas_.prefetch(*in_deltas, chunk[r + kAhead]);
      if (const DeltaRows::Location* at = deltas_.find(*in_deltas, chunk[r])) {
        merge.replaced.push_back(PartMerge::Replacement{first + r, *at});
        (*in_base)[deltas_.ordinal(*in_deltas, at)] = true;
      }
    }
  }
  // the ids it gains: those of its slice the base does not have
  const std::vector<int64_t>& delta_ids = deltas_.ids_in_order(table);
  for (size_t i = 0; i < delta_ids.size(); ++i) {
    const uint64_t residue = static_cast<uint64_t>(delta_ids[i]) % slice->size;
    if (residue >= slice->begin && residue < slice->end && !(*in_base)[i]) {
      merge.added.push_back(*deltas_.find(*in_deltas, delta_ids[i]));
    }
  }
  const std::string steps_key = table + ".step_filter/" + suffix;
  if (settings_.older_than && base_.blocks.find(steps_key)) {  // eviction applies where the table has the slot
    auto steps = base_column(steps_key);
    if (!steps) return steps.error();
    if (steps.value().tensor.dtype != DType::kI64 || steps.value().row_bytes() != 8 ||
        steps.value().rows() != column.rows()) {
      return bad_input(steps.value().path, "step_filter tensor " + quoted_name(steps_key) + " is not int64 [" +
                                               std::to_string(column.rows()) + ", 1] like its part's id");
    }
    auto selected = select_rows(table, key, merge, steps.value());
    if (!selected) return selected.error();
    part.selection = std::move(selected).value();
  }
  return &parts_.emplace(key, std::move(part)).first->second;
}

Result<std::shared_ptr<const PartSelection>> MergedExport::select_rows(const std::string& table, const std::string& key,
                                                                      const PartMerge& merge, const RowColumn& steps) {
  auto fd = files_.fd(steps.path);
  if (!fd) return fd.error();
  MergedRows rows(FileColumn{fd.value(), steps.path, "tensor " + quoted_name(steps.key), steps.offset, 8}, merge, deltas_,
                  "step_filter", files_);
  const std::string path = settings_.kept_rows_prefix + std::to_string(bitmaps_++);
  auto record = KeptRowBitmapWriter::create(path);
  if (!record) return record.error();
  std::vector<unsigned char> values(kIdChunk * 8), keep(kIdChunk);
  uint64_t kept = 0;
  for (uint64_t first = 0; first < merge.rows(); first += kIdChunk) {
    const uint64_t n = std::min(kIdChunk, merge.rows() - first);
    unsigned char* const into[] = {values.data()};
    auto read = rows.read(first, n, nullptr, into);
    if (!read) return read.error();
    kept += decide_by_step(values.data(), n, settings_.global_step, *settings_.older_than, keep.data());
    auto appended = record.value().append(keep.data(), n);
    if (!appended) return appended.error();
  }
  auto finished = record.value().finish();
  if (!finished) return finished.error();
  return std::make_shared<const PartSelection>(
      PartSelection{part_of_key(table, key), PartDecision{}, merge.rows(), kept, path});
}

Result<TensorRows> MergedExport::rows_of(const TensorOfFile& of) {
  const TensorInfo& t = of.header.tensors[of.tensor];
  TensorRows out;
  if (!of.key.sparse) {  // a dense tensor: the newest delta's, if one has it
    if (const RowColumn* newer = deltas_.dense(t.name)) {
      auto fd = files_.fd(newer->path);
      if (!fd) return fd.error();
      std::vector<FileColumn> column{
          FileColumn{fd.value(), newer->path, "tensor " + quoted_name(newer->key), newer->offset, newer->tensor.nbytes()}};
      out.from = RowsFrom{std::make_shared<ColumnReader>(std::move(column)), 1, newer->tensor};
    }
    return out;
  }
  const std::string& table = of.key.sparse_key.child;
  auto part = merged_part(table, t.name.substr(t.name.rfind('/') + 1), of.key.sparse_key.slice);
  if (!part) return part.error();
  const PartMerge& merge = part.value()->merge;
  if (t.shape.empty()) return bad_input(of.path, "sparse tensor " + quoted_name(t.name) + " has no rows");
  if (t.shape[0] != merge.base_rows) {
    return bad_input(of.path, "sparse tensor " + quoted_name(t.name) + " has " + std::to_string(t.shape[0]) +
                                  " rows but its part's id has " + std::to_string(merge.base_rows));
  }
  out.selection = part.value()->selection;
  if (of.key.sparse_key.slot == "id" && out.selection) {  // once per part: its id is in one file
    evicted_[table] += out.selection->rows - out.selection->kept;
  }
  if (merge.changed()) {
    const RowColumn base{of.path, t.name, t, of.header.data_start() + t.begin};
    TensorInfo merged = t;
    merged.shape[0] = merge.rows();
    merged.begin = 0;
    merged.end = merge.rows() * base.row_bytes();
    auto rows = std::make_shared<MergedRows>(
        FileColumn{of.fd, of.path, "tensor " + quoted_name(t.name), base.offset, base.row_bytes()}, merge, deltas_,
        of.key.sparse_key.slot, files_);
    out.from = RowsFrom{std::move(rows), merge.rows(), std::move(merged)};
  }
  return out;
}

}  // namespace recis_convert
