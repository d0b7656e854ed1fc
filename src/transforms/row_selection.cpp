#include "recis_convert/transforms/row_selection.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "recis_convert/sources/column_reader.h"
#include "recis_convert/transforms/embedding_codecs.h"
#include "recis_convert/transforms/row_delta.h"
#include "recis_convert/transforms/row_eviction.h"

namespace recis_convert {
namespace {

uint64_t row_bytes(const DecisionColumn& c) { return c.row_elements * dtype_bits(c.dtype) / 8; }

Result<std::unique_ptr<FileDescriptor>> open_column(const DecisionColumn& c) {
  auto opened = open_input_file(c.path);
  if (!opened) return opened.error();
  return std::make_unique<FileDescriptor>(std::move(opened).value());
}

}  // namespace

std::vector<LocatedColumn> decision_columns_in(const SafetensorsHeader& header, const std::vector<KeyClass>& keys,
                                               const std::string& path, bool by_step, bool by_norm) {
  std::vector<LocatedColumn> out;
  for (size_t i = 0; i < keys.size() && i < header.tensors.size(); ++i) {
    const KeyClass& key = keys[i];
    if (!key.sparse) continue;
    const std::string& slot = key.sparse_key.slot;
    if (!((by_step && slot == "step_filter") || (by_norm && slot == "embedding") || ((by_step || by_norm) && slot == "id"))) {
      continue;
    }
    const TensorInfo& t = header.tensors[i];
    LocatedColumn c;
    c.part = part_of_key(key.sparse_key.child, t.name);
    c.slot = slot;
    uint64_t elements = 1;
    for (size_t d = 1; d < t.shape.size(); ++d) elements *= t.shape[d];
    c.column = DecisionColumn{path, t.name, header.data_start() + t.begin, t.shape.empty() ? 0 : t.shape[0], t.dtype,
                              elements};
    out.push_back(std::move(c));
  }
  return out;
}

Result<RowSelector> RowSelector::open(const PartDecision& decision) {
  std::vector<std::shared_ptr<RowReader>> readers;  // the columns' rows in their files
  std::vector<std::unique_ptr<FileDescriptor>> files;
  for (const auto* c : {&decision.step_filter, &decision.embedding}) {
    if (!*c) {
      readers.push_back(nullptr);
      continue;
    }
    auto fd = open_column(**c);
    if (!fd) return fd.error();
    files.push_back(std::move(fd).value());
    readers.push_back(std::make_shared<ColumnReader>(std::vector<FileColumn>{
        FileColumn{files.back()->get(), (*c)->path, "tensor \"" + (*c)->tensor + "\"", (*c)->offset, row_bytes(**c)}}));
  }
  auto opened = open(decision, readers[0], readers[1]);
  if (!opened) return opened.error();
  opened.value().files_ = std::move(files);
  return opened;
}

Result<RowSelector> RowSelector::open(const PartDecision& decision, std::shared_ptr<RowReader> step_filter,
                                      std::shared_ptr<RowReader> embedding) {
  RowSelector s;
  s.decision_ = decision;
  s.rows_ = decision.rows();
  uint64_t widest = 1;
  if (decision.step_filter) {
    const DecisionColumn& c = *decision.step_filter;
    if (c.dtype != DType::kI64 || c.row_elements != 1) {
      return bad_input(c.path, "step_filter tensor \"" + c.tensor + "\" is not int64 [N, 1]");
    }
    s.step_filter_rows_ = std::move(step_filter);
    widest = std::max(widest, row_bytes(c));
  }
  if (decision.embedding) {
    const DecisionColumn& c = *decision.embedding;
    if (!can_quantize(c.dtype)) {
      return bad_input(c.path, "embedding tensor \"" + c.tensor + "\" is not floating point: it has no L2 norm");
    }
    if (decision.step_filter && c.rows != decision.step_filter->rows) {
      return bad_input(decision.step_filter->path, "step_filter tensor \"" + decision.step_filter->tensor + "\" has " +
                                                       std::to_string(decision.step_filter->rows) +
                                                       " rows but its embedding has " + std::to_string(c.rows));
    }
    s.embedding_rows_ = std::move(embedding);
    widest = std::max(widest, row_bytes(c));
  }
  s.chunk_rows_ = std::max<uint64_t>(1, kChunkBytes / widest);
  return s;
}

Result<RowSelector> RowSelector::open(const PartSelection& selection) {
  if (selection.kept_rows_file.empty()) return open(selection.decision);
  auto recorded = KeptRowBitmapReader::open(selection.kept_rows_file, selection.rows);
  if (!recorded) return recorded.error();
  RowSelector s;
  s.decision_ = selection.decision;
  s.rows_ = selection.rows;
  s.recorded_.emplace(std::move(recorded).value());
  s.chunk_rows_ = kChunkBytes / sizeof(int64_t);  // the chunks of a step_filter column: the rows read beside
                                                   // them stay cache-sized
  return s;
}

Result<std::optional<RowSelector>> RowSelector::open_if(const PartSelection* selection) {
  if (!selection) return std::optional<RowSelector>();
  auto opened = open(*selection);
  if (!opened) return opened.error();
  return std::optional<RowSelector>(std::move(opened).value());
}

Status RowSelector::read_rows(const DecisionColumn& column, RowReader& rows, uint64_t first, uint64_t n) {
  column_.resize(n * row_bytes(column));
  unsigned char* const into[] = {column_.data()};
  return rows.read(first, n, nullptr, into);
}

Result<uint64_t> RowSelector::decide(uint64_t first, uint64_t n, unsigned char* keep) {
  if (recorded_) return recorded_->read(first, n, keep);
  std::fill(keep, keep + n, 1);
  if (decision_.step_filter) {
    auto read = read_rows(*decision_.step_filter, *step_filter_rows_, first, n);
    if (!read) return read.error();
    if (decision_.older_than) decide_by_step(column_.data(), n, decision_.global_step, *decision_.older_than, keep);
    if (decision_.changed_after) decide_by_change(column_.data(), n, *decision_.changed_after, keep);
  }
  if (decision_.embedding) {
    const DecisionColumn& c = *decision_.embedding;
    auto read = read_rows(c, *embedding_rows_, first, n);
    if (!read) return read.error();
    values_.resize(c.row_elements);
    for (uint64_t i = 0; i < n; ++i) {
      to_float32(c.dtype, column_.data() + i * row_bytes(c), c.row_elements, values_.data());
      keep[i] &= kept_by_norm(values_.data(), c.row_elements, decision_.l2_below) ? 1 : 0;
    }
  }
  uint64_t kept = 0;
  for (uint64_t i = 0; i < n; ++i) kept += keep[i];
  return kept;
}

Status RowSelector::kept_rows(uint64_t first, uint64_t n, std::vector<uint32_t>& kept) {
  if (recorded_) return recorded_->read_kept(first, n, kept);
  keep_.resize(n);
  auto decided = decide(first, n, keep_.data());
  if (!decided) return decided.error();
  kept.clear();
  for (uint64_t i = 0; i < n; ++i) {
    if (keep_[i]) kept.push_back(static_cast<uint32_t>(i));
  }
  return Ok{};
}

Result<uint64_t> RowSelector::count_kept(KeptRowBitmapWriter* record) {
  std::vector<unsigned char> keep(chunk_rows_);
  uint64_t kept = 0;
  for (uint64_t first = 0; first < rows_; first += chunk_rows_) {
    const uint64_t n = std::min(chunk_rows_, rows_ - first);
    auto decided = decide(first, n, keep.data());
    if (!decided) return decided.error();
    kept += decided.value();
    if (record) {
      auto appended = record->append(keep.data(), n);
      if (!appended) return appended.error();
    }
  }
  if (record) {
    auto finished = record->finish();
    if (!finished) return finished.error();
  }
  return kept;
}

}  // namespace recis_convert
