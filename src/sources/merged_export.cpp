#include "recis_convert/sources/merged_export.h"

#include <algorithm>

#include "recis_convert/common/file_io.h"
#include "recis_convert/plan/slices.h"
#include "recis_convert/transforms/kept_row_bitmap.h"
#include "recis_convert/transforms/row_selection.h"

namespace recis_convert {

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

Result<MergedExport::MergedPart> MergedExport::merged_part(const std::string& table, const std::string& suffix,
                                                                std::string_view slice_text) {
  const std::string key = table + ".id/" + suffix;
  auto cached = parts_.find(key);
  if (cached != parts_.end()) {
    cached->second.last_use = ++uses_;
    return cached->second.part;
  }
  auto ids = base_column(key);
  if (!ids) return ids.error();
  const RowColumn& column = ids.value();
  if (column.tensor.dtype != DType::kI64) return bad_input(column.path, "id tensor " + quoted_name(key) + " is not int64");
  auto slice = parse_slice(slice_text);
  if (!slice) return bad_input(base_.ckpt_dir, "part " + quoted_name(key) + " has no slice RecIS writes");
  auto fd = files_.fd(column.path);
  if (!fd) return fd.error();
  auto merged = join_part(column, fd.value(), deltas_, table, *slice, settings_.join);
  if (!merged) return merged.error();
  auto selected = select_rows(table, suffix, merged.value());
  if (!selected) return selected.error();
  const MergedPart part{std::move(merged).value(), std::move(selected).value()};
  // a spilled part counts as a share of the cache, so that few hold their spill files open
  const uint64_t bytes = std::max(part.merge->memory_bytes(), part.merge->spilled() ? kCachedMergeBytes / 16 : 0);
  while (!parts_.empty() && cached_bytes_ + bytes > kCachedMergeBytes) {  // a reader still holding one keeps it
    auto oldest = std::min_element(parts_.begin(), parts_.end(), [](const auto& a, const auto& b) {
      return a.second.last_use < b.second.last_use;
    });
    cached_bytes_ -= oldest->second.bytes;
    parts_.erase(oldest);
  }
  cached_bytes_ += bytes;
  return parts_.emplace(key, CachedPart{part, ++uses_, bytes}).first->second.part;
}

Result<std::shared_ptr<const PartSelection>> MergedExport::select_rows(const std::string& table,
                                                                      const std::string& suffix,
                                                                      const std::shared_ptr<const PartMerge>& merge) {
  // the export's eviction rules (transforms/row_selection.h), over the part's merged rows
  PartDecision decision;
  std::shared_ptr<RowReader> steps, embeddings;
  const std::string steps_key = table + ".step_filter/" + suffix;
  if (settings_.older_than && base_.blocks.find(steps_key)) {  // by step where the table has the slot
    auto found = merged_column(steps_key, merge, "step_filter");
    if (!found) return found.error();
    decision.step_filter = found.value().first;
    by_step_.insert(table);
    decision.older_than = settings_.older_than;
    decision.global_step = settings_.global_step;
    steps = std::move(found.value().second);
  }
  const std::string embedding_key = table + ".embedding/" + suffix;
  if (settings_.l2_below && base_.blocks.find(embedding_key)) {  // by norm where it has embeddings
    auto found = merged_column(embedding_key, merge, "embedding");
    if (!found) return found.error();
    decision.embedding = found.value().first;
    decision.l2_below = *settings_.l2_below;
    embeddings = std::move(found.value().second);
  }
  if (decision.decides()) {
    auto selector = RowSelector::open(decision, std::move(steps), std::move(embeddings));
    if (!selector) return selector.error();
    const std::string path = settings_.kept_rows_prefix + std::to_string(bitmaps_++);
    auto record = KeptRowBitmapWriter::create(path);
    if (!record) return record.error();
    auto kept = selector.value().count_kept(&record.value());  // and closes the record
    if (!kept) return kept.error();
    return std::make_shared<const PartSelection>(
        PartSelection{part_of_key(table, table + ".id/" + suffix), std::move(decision), merge->rows(), kept.value(),
                      path});
  }
  return std::shared_ptr<const PartSelection>();
}

Result<std::pair<DecisionColumn, std::shared_ptr<RowReader>>> MergedExport::merged_column(
    const std::string& key, std::shared_ptr<const PartMerge> merge, const std::string& slot) {
  auto column = base_column(key);
  if (!column) return column.error();
  const RowColumn& c = column.value();
  if (c.rows() != merge->base_rows()) {
    return bad_input(c.path, "tensor " + quoted_name(key) + " has " + std::to_string(c.rows()) +
                                 " rows but its part's id has " + std::to_string(merge->base_rows()));
  }
  auto fd = files_.fd(c.path);
  if (!fd) return fd.error();
  uint64_t elements = 1;
  for (size_t d = 1; d < c.tensor.shape.size(); ++d) elements *= c.tensor.shape[d];
  const DecisionColumn described{c.path, key, 0, merge->rows(), c.tensor.dtype, elements};
  auto rows = std::make_shared<MergedRows>(FileColumn{fd.value(), c.path, "tensor " + quoted_name(key), c.offset,
                                                      c.row_bytes()},
                                           std::move(merge), deltas_, slot, files_, settings_.join.verifier);
  return std::make_pair(described, std::shared_ptr<RowReader>(std::move(rows)));
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
      out.from = RowsFrom{std::make_shared<ColumnReader>(std::move(column)), 1, newer->tensor, nullptr};
    }
    return out;
  }
  if (of.path != headers_file_) {  // the previous file is written: the headers its parts needed go with it
    headers_.clear();
    headers_file_ = of.path;
  }
  const std::string& table = of.key.sparse_key.child;
  const std::string suffix = t.name.substr(t.name.rfind('/') + 1);  // "part_0_3"
  auto part = merged_part(table, suffix, of.key.sparse_key.slice);
  if (!part) return part.error();
  const PartMerge& merge = *part.value().merge;
  if (t.shape.empty()) return bad_input(of.path, "sparse tensor " + quoted_name(t.name) + " has no rows");
  if (t.shape[0] != merge.base_rows()) {
    return bad_input(of.path, "sparse tensor " + quoted_name(t.name) + " has " + std::to_string(t.shape[0]) +
                                  " rows but its part's id has " + std::to_string(merge.base_rows()));
  }
  out.selection = part.value().selection;
  if (of.key.sparse_key.slot == "id" && out.selection) {  // once per part: its id is in one file
    evicted_[table] += out.selection->rows - out.selection->kept;
  }
  if (merge.changed()) {  // read through files of its own: a reader may outlive the caller's `fd` (model.h5's)
    auto rows = merged_column(t.name, part.value().merge, of.key.sparse_key.slot);
    if (!rows) return rows.error();
    auto ids = merged_column(table + ".id/" + suffix, part.value().merge, "id");  // beside them
    if (!ids) return ids.error();
    TensorInfo merged = t;
    merged.shape[0] = merge.rows();
    merged.begin = 0;
    merged.end = merge.rows() * rows.value().second->row_bytes(0);
    out.from = RowsFrom{std::move(rows.value().second), merge.rows(), std::move(merged), std::move(ids.value().second)};
  }
  return out;
}

}  // namespace recis_convert
