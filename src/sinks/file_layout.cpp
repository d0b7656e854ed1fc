#include "recis_convert/sinks/file_layout.h"

namespace recis_convert {

uint64_t FileLayout::output_bytes() const {
  uint64_t total = preamble.size();
  for (const auto& range : ranges) total += range.output_length();
  return total;
}

FileLayout lay_out_filtered_file(const SafetensorsHeader& header, const std::vector<bool>& keep,
                            const std::vector<std::shared_ptr<const SlotRows>>& rewrites) {
  FileLayout plan;
  uint64_t next = 0;
  for (size_t i = 0; i < header.tensors.size(); ++i) {
    const TensorInfo& source = header.tensors[i];
    if (!keep[i]) {
      plan.dropped.push_back(source);
      continue;
    }
    TensorInfo out = source;
    out.begin = next;
    const uint64_t offset = header.data_start() + source.begin;
    if (i < rewrites.size() && rewrites[i]) {
      const RowLayout& layout = rewrites[i]->output();
      const uint64_t rows = source.shape.at(0);
      out.dtype = layout.dtype;
      out.dtype_spelling = layout.dtype_spelling;
      out.shape = layout.tensor_shape(rows);
      out.end = next + rows * layout.row_bytes();
      next = out.end;
      plan.kept.push_back(out);
      if (rows > 0) plan.ranges.emplace_back(offset, source.nbytes(), rewrites[i], rows);
      continue;
    }
    out.end = next + source.nbytes();
    next = out.end;
    plan.kept.push_back(out);
    if (source.nbytes() == 0) continue;
    if (!plan.ranges.empty() && !plan.ranges.back().rewrite &&
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
