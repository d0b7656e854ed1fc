#include "recis_convert/sources/merged_rows.h"

#include <algorithm>
#include <cstring>
#include <optional>

namespace recis_convert {

Status MergedRows::read(uint64_t first, uint64_t n, const std::vector<uint32_t>* kept, unsigned char* const* into) {
  unsigned char* const out = into[0];
  const uint64_t row_bytes = base_.row_bytes;
  const uint64_t end = first + n, base_end = std::min(end, merge_->base_rows());
  // where row `first + offset` lands in `out`: its place among the kept rows (both ascend), or its offset
  size_t next_kept = 0;
  auto place = [&](uint64_t offset) -> std::optional<size_t> {
    if (!kept) return static_cast<size_t>(offset);
    while (next_kept < kept->size() && (*kept)[next_kept] < offset) ++next_kept;
    if (next_kept == kept->size() || (*kept)[next_kept] != offset) return std::nullopt;
    return next_kept;
  };
  // 1. the base's own rows
  if (first < base_end) {
    Status read = Ok{};
    if (!kept) {
      read = read_exact(base_.fd, base_.offset + first * row_bytes, (base_end - first) * row_bytes, out, base_.path,
                        base_.what);
      if (read && verifier_) {
        read = verifier_->saw(base_.path, base_.fd, base_.offset + first * row_bytes, out, (base_end - first) * row_bytes);
      }
    } else {
      const auto split = std::lower_bound(kept->begin(), kept->end(), static_cast<uint32_t>(base_end - first));
      const std::vector<uint32_t>* base_kept = kept;
      if (split != kept->end()) {
        base_kept_.assign(kept->begin(), split);
        base_kept = &base_kept_;
      }
      read = read_kept_rows(base_.fd, base_.offset + first * row_bytes, row_bytes, *base_kept, out, base_.path,
                            base_.what);
    }
    if (!read) return read;
  }
  // 2. in windows of kWindowRows (the places of a window's delta rows take 48 bytes a row, more than a narrow row
  // itself), the delta rows that replace base rows, and the rows the part gains
  const uint64_t base_rows = merge_->base_rows();
  Status fetched = Ok{};
  for (uint64_t window = first; window < end && fetched; window += kWindowRows) {
    const uint64_t window_end = std::min(end, window + kWindowRows);
    fetches_.clear();
    if (window < base_end) {
      auto replaced = merge_->replaced_between(window, std::min(window_end, base_end), replaced_);
      if (!replaced) return replaced;
      for (const PartMerge::Replacement& r : replaced_) {
        if (auto at = place(r.row - first)) fetches_.push_back(Fetch{r.at, out + *at * row_bytes});
      }
    }
    if (window_end > base_rows) {
      const uint64_t gained = std::max(window, base_rows);
      auto added = merge_->added_between(gained - base_rows, window_end - base_rows, added_);
      if (!added) return added;
      for (uint64_t row = gained; row < window_end; ++row) {
        if (auto at = place(row - first)) fetches_.push_back(Fetch{added_[row - gained], out + *at * row_bytes});
      }
    }
    fetched = fetch(fetches_);
  }
  // between reads a reader holds no scratch: model.h5's writer keeps one per merged tensor until it has written
  // them all
  std::vector<Fetch>().swap(fetches_);
  std::vector<uint32_t>().swap(base_kept_);
  std::vector<unsigned char>().swap(run_);
  std::vector<PartMerge::Replacement>().swap(replaced_);
  std::vector<DeltaRows::Location>().swap(added_);
  return fetched;
}

Status MergedRows::fetch(const std::vector<Fetch>& fetches) {
  const uint64_t row_bytes = base_.row_bytes;
  const uint64_t max_run = std::max<uint64_t>(1, kMaxRunBytes / std::max<uint64_t>(row_bytes, 1));
  for (size_t i = 0; i < fetches.size();) {
    const DeltaRows::Location& head = fetches[i].at;
    size_t j = i + 1;
    while (j < fetches.size() && j - i < max_run && fetches[j].at.part == head.part &&
           fetches[j].at.row == head.row + (j - i)) {
      ++j;
    }
    const DeltaRows::Part& part = deltas_.part(head.part);
    auto column = part.slots.find(slot_);
    if (column == part.slots.end()) {
      return bad_input(part.slots.at("id").path, "the part of " + quoted_name(part.slots.at("id").key) +
                                                     " has no slot " + quoted_name(slot_) + ", which the base exports");
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

}  // namespace recis_convert
