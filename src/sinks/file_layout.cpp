#include "recis_convert/sinks/file_layout.h"

#include <algorithm>

namespace recis_convert {

PartSpan part_span(uint64_t part_begin, uint64_t length, uint64_t begin, uint64_t end) {
  const uint64_t lo = std::max(begin, part_begin), hi = std::min(end, part_begin + length);
  return hi > lo ? PartSpan{lo - part_begin, hi - part_begin} : PartSpan{};
}

uint64_t FileLayout::output_bytes() const {
  uint64_t total = preamble.size();
  for (const auto& range : ranges) total += range.output_length();
  return total;
}

FileLayout lay_out_filtered_file(const SafetensorsHeader& header, const std::vector<bool>& keep,
                                 const std::vector<std::shared_ptr<const SlotRows>>& rewrites,
                                 const std::vector<std::shared_ptr<const PartSelection>>& selections,
                                 const std::vector<std::optional<RowsFrom>>& from) {
  FileLayout plan;
  uint64_t next = 0;
  for (size_t i = 0; i < header.tensors.size(); ++i) {
    if (!keep[i]) {
      plan.dropped.push_back(header.tensors[i]);
      continue;
    }
    const RowsFrom* rows_from = i < from.size() && from[i] ? &*from[i] : nullptr;
    const TensorInfo& source = rows_from ? rows_from->tensor : header.tensors[i];
    TensorInfo out = source;
    out.begin = next;
    const uint64_t offset = rows_from ? 0 : header.data_start() + source.begin;
    const auto& rewrite = i < rewrites.size() ? rewrites[i] : nullptr;
    const auto& selection = i < selections.size() ? selections[i] : nullptr;
    if (rewrite || selection) {  // row by row: rewritten, or only the kept rows, or both
      const uint64_t rows = source.shape.at(0);
      const uint64_t written = selection ? selection->kept : rows;
      RowLayout layout = rewrite ? rewrite->output()
                                 : RowLayout::of_tensor(source.dtype, source.dtype_spelling, source.shape);
      out.dtype = layout.dtype;
      out.dtype_spelling = layout.dtype_spelling;
      out.shape = layout.tensor_shape(written);
      out.end = next + written * layout.row_bytes();
      next = out.end;
      plan.kept.push_back(out);
      if (rows > 0) {
        plan.ranges.emplace_back(offset, source.nbytes(), rewrite, rows, selection,
                                 rows_from ? rows_from->reader : nullptr);
      }
      continue;
    }
    out.end = next + source.nbytes();
    next = out.end;
    plan.kept.push_back(out);
    if (source.nbytes() == 0) continue;
    if (rows_from) {
      plan.ranges.emplace_back(0, source.nbytes(), nullptr, rows_from->rows, nullptr, rows_from->reader);
    } else if (!plan.ranges.empty() && !plan.ranges.back().by_rows() &&
               plan.ranges.back().offset + plan.ranges.back().length == offset) {
      plan.ranges.back().length += source.nbytes();
    } else {
      plan.ranges.emplace_back(offset, source.nbytes());
    }
  }
  plan.preamble = serialize_recis_header(plan.kept, header.metadata);
  return plan;
}

FileLayout lay_out_verbatim_copy(const SafetensorsHeader& header) {
  FileLayout plan;
  plan.kept = header.tensors;
  plan.ranges.emplace_back(0, header.file_size);
  return plan;
}

}  // namespace recis_convert
