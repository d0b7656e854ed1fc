// The optimizer-slot filter: which tensors of a data file are exported, and the layout of the rewritten file.
//
// Optimizer state is recognised by name, as RecIS names it (recis-checkpoint.md 4.2, 4.3): every optimizer slot
// and optimizer scalar starts with the optimizer prefix "sparse_<opt>_". `id`, `embedding` and filter-hook slots
// (e.g. `step_filter`) are model state and are kept.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "recis_convert/checkpoint.h"
#include "recis_convert/safetensors.h"

namespace recis_convert {

class OptimizerSlotFilter {
 public:
  OptimizerSlotFilter(bool drop_optimizer_state, std::set<std::string> extra_dropped_slots)
      : drop_optimizer_state_(drop_optimizer_state), extra_dropped_slots_(std::move(extra_dropped_slots)) {}

  // True when nothing is ever dropped: the export is then a byte-exact copy of each file.
  bool is_identity() const { return !drop_optimizer_state_ && extra_dropped_slots_.empty(); }

  // Sparse blocks: dropped if the slot starts with "sparse_" (when filtering) or is named by --drop-slot.
  // Dense blocks ("name^ "): dropped if the name starts with "sparse_" (an optimizer scalar such as
  // "sparse_adamw_step") when filtering.
  bool keeps(const KeyClass& key) const;

 private:
  bool drop_optimizer_state_;
  std::set<std::string> extra_dropped_slots_;
};

// An embedding tensor to quantize row by row instead of copying (quantize.h).
struct RowQuantization {
  uint64_t rows = 0;
  uint64_t dim = 0;
  DType dtype = DType::kF32;  // of the source rows
  std::string tensor;         // for error messages
};

// A byte range of the source file to copy unchanged, or, with `quantize`, to write as int8 rows.
struct CopyRange {
  CopyRange(uint64_t offset_, uint64_t length_, std::optional<RowQuantization> quantize_ = std::nullopt)
      : offset(offset_), length(length_), quantize(std::move(quantize_)) {}
  uint64_t offset;
  uint64_t length;
  std::optional<RowQuantization> quantize;
};

// What the export of one data file writes: the new preamble (length + header), then the source ranges in order.
struct FilePlan {
  std::vector<TensorInfo> kept;     // with offsets in the output file, header order kept
  std::vector<TensorInfo> dropped;  // with offsets in the source file
  std::string preamble;             // u64 length + JSON header + padding
  std::vector<CopyRange> ranges;    // source byte ranges, adjacent ones merged
  uint64_t output_bytes() const;
};

// Keeps the tensors whose keep[i] is true (i indexes header.tensors), in source header order, back to back.
// Tensors with quantize[i] (optional; 2-D, a dtype can_quantize accepts) become U8 [rows, dim + 8] int8 rows.
FilePlan plan_filtered_file(const SafetensorsHeader& header, const std::vector<bool>& keep,
                            const std::vector<bool>& quantize = {});

// The whole file, unchanged: used when the filter is the identity (copy mode).
FilePlan plan_verbatim_copy(const SafetensorsHeader& header);

}  // namespace recis_convert
