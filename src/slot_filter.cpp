#include "recis_convert/slot_filter.h"

#include "recis_convert/quantize.h"

namespace recis_convert {
namespace {

bool is_optimizer_name(const std::string& name) { return name.rfind("sparse_", 0) == 0; }

}  // namespace

bool OptimizerSlotFilter::keeps(const KeyClass& key) const {
  if (key.sparse) {
    if (drop_optimizer_state_ && is_optimizer_name(key.sparse_key.slot)) return false;
    return extra_dropped_slots_.count(key.sparse_key.slot) == 0;
  }
  return !(drop_optimizer_state_ && is_optimizer_name(key.dense_name));
}

uint64_t FilePlan::output_bytes() const {
  uint64_t total = preamble.size();
  for (const auto& range : ranges) {
    total += range.quantize ? range.quantize->rows * (range.quantize->dim + kInt8RowwiseExtraBytes) : range.length;
  }
  return total;
}

FilePlan plan_filtered_file(const SafetensorsHeader& header, const std::vector<bool>& keep,
                            const std::vector<bool>& quantize) {
  FilePlan plan;
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
    if (i < quantize.size() && quantize[i]) {
      const uint64_t rows = source.shape.at(0), dim = source.shape.at(1);
      out.dtype = DType::kU8;
      out.dtype_spelling = "U8";
      out.shape = {rows, dim + kInt8RowwiseExtraBytes};
      out.end = next + rows * (dim + kInt8RowwiseExtraBytes);
      next = out.end;
      plan.kept.push_back(out);
      if (rows > 0) plan.ranges.push_back({offset, source.nbytes(), RowQuantization{rows, dim, source.dtype, source.name}});
      continue;
    }
    out.end = next + source.nbytes();
    next = out.end;
    plan.kept.push_back(out);
    if (source.nbytes() == 0) continue;
    if (!plan.ranges.empty() && !plan.ranges.back().quantize &&
        plan.ranges.back().offset + plan.ranges.back().length == offset) {
      plan.ranges.back().length += source.nbytes();
    } else {
      plan.ranges.push_back({offset, source.nbytes()});
    }
  }
  plan.preamble = serialize_recis_header(plan.kept, header.metadata);
  return plan;
}

FilePlan plan_verbatim_copy(const SafetensorsHeader& header) {
  FilePlan plan;
  plan.kept = header.tensors;
  plan.ranges.push_back({0, header.file_size});
  return plan;
}

}  // namespace recis_convert
