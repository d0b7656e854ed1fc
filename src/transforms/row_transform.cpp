#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

uint64_t RowLayout::row_bytes() const {
  uint64_t elements = 1;
  for (uint64_t d : row_shape) elements *= d;
  return elements * dtype_bits(dtype) / 8;
}

std::vector<uint64_t> RowLayout::tensor_shape(uint64_t rows) const {
  std::vector<uint64_t> shape = {rows};
  shape.insert(shape.end(), row_shape.begin(), row_shape.end());
  return shape;
}

RowLayout RowLayout::of_tensor(DType dtype, const std::string& dtype_spelling, const std::vector<uint64_t>& shape) {
  RowLayout layout;
  layout.dtype = dtype;
  layout.dtype_spelling = dtype_spelling;
  layout.row_shape.assign(shape.begin() + (shape.empty() ? 0 : 1), shape.end());
  return layout;
}

bool RowTransform::drops_anything() const { return false; }
bool RowTransform::keeps(const SlotRef&) const { return true; }
bool RowTransform::keeps_dense(const std::string&) const { return true; }
bool RowTransform::rewrites(const SlotRef&) const { return false; }
Result<RowLayout> RowTransform::rewritten_layout(const SlotRef&, const RowLayout& in) const { return in; }
Status RowTransform::rewrite(const SlotRef&, const RowLayout&, const RowLayout&, const unsigned char*, uint64_t,
                             uint64_t, unsigned char*, RowVisit) const {
  return Error{ExitCode::kInternal, "", "a row transform that rewrites nothing was asked to rewrite rows"};
}

Status SlotRows::apply(const unsigned char* in, uint64_t rows, uint64_t first_row,
                       std::vector<unsigned char>& out) const {
  out.resize(rows * output().row_bytes());
  return apply(in, rows, first_row, out.data());
}

Status SlotRows::apply(const unsigned char* in, uint64_t rows, uint64_t first_row, unsigned char* out,
                       RowVisit visit) const {
  std::vector<unsigned char> between;  // only when more than one transform rewrites the slot
  const unsigned char* from = in;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& step = steps_[i];
    const bool last = i + 1 == steps_.size();
    std::vector<unsigned char> scratch;
    if (!last) scratch.resize(rows * step.to.row_bytes());
    unsigned char* to = last ? out : scratch.data();
    auto done = step.transform->rewrite(slot_, step.from, step.to, from, rows, first_row, to, visit);
    if (!done) return done;
    if (!last) {
      between.swap(scratch);
      from = between.data();
    }
  }
  return Ok{};
}

bool RowTransformChain::is_identity() const {
  for (const auto& t : transforms_) {
    if (!t->is_identity()) return false;
  }
  return true;
}

bool RowTransformChain::drops_anything() const {
  for (const auto& t : transforms_) {
    if (t->drops_anything()) return true;
  }
  return false;
}

bool RowTransformChain::keeps_dense(const std::string& name) const {
  for (const auto& t : transforms_) {
    if (!t->keeps_dense(name)) return false;
  }
  return true;
}

Result<SlotRows> RowTransformChain::prepare(const SlotRef& slot, const RowLayout& source) const {
  SlotRows rows;
  rows.slot_ = slot;
  rows.source_ = source;
  for (const auto& t : transforms_) {
    if (!t->keeps(slot)) {
      rows.kept_ = false;
      rows.steps_.clear();
      return rows;
    }
    if (!t->rewrites(slot)) continue;
    const RowLayout from = rows.output();
    auto to = t->rewritten_layout(slot, from);
    if (!to) return to.error();
    rows.steps_.push_back({t.get(), from, std::move(to).value()});
  }
  return rows;
}

}  // namespace recis_convert
