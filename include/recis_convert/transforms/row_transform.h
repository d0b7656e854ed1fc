// Row transforms: what happens to a table's rows between the source that reads them and the sink that writes
// them. A transform knows neither where rows come from nor where they go; it sees one slot of one table (its
// name, its row layout) and pieces of its rows.
//
// The chain is asked once per slot (prepare), before any byte moves: does the slot survive, and what does a row
// look like afterwards? The answer, SlotRows, is checked once and then applied to every piece of that slot's rows,
// so a sink can lay out its output (sizes, offsets, datasets) before writing, and a slot that no transform
// rewrites is copied byte for byte (copy_file_range where the sink can).
//
// Transforms in chain order (make_row_transforms in transforms/job_transforms.h): the optimizer-slot filter (slot_filter.h),
// then the serving dtype of `embedding` rows (quantize.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/formats/safetensors.h"

namespace recis_convert {

// What one row of a slot looks like.
struct QuantizationLedger;  // quantization_error.h

struct RowLayout {
  DType dtype = DType::kF32;
  std::string dtype_spelling;       // as a safetensors header spells it
  std::vector<uint64_t> row_shape;  // the dimensions of one row (a tensor's shape without its first dimension)
  std::string encoding;             // "" as read; else the serving dtype the rows were converted to
                                    // (quantization_name: "fp16", "int8_rowwise"...)

  uint64_t row_bytes() const;
  // The shape of a tensor of `rows` such rows.
  std::vector<uint64_t> tensor_shape(uint64_t rows) const;
  // The layout of a tensor's rows (its first dimension counts rows); shape must have at least one dimension.
  static RowLayout of_tensor(DType dtype, const std::string& dtype_spelling, const std::vector<uint64_t>& shape);
};

// Whose rows: what a transform decides on, and what its error messages name.
struct SlotRef {
  std::string table;   // RecIS hashtable child or HugeCTR table
  std::string slot;    // id, embedding, step_filter, sparse_adamw_exp_avg, slot_id...
  std::string tensor;  // the source tensor (or HugeCTR file), for messages
  std::string file;    // the source file, for messages
};

// Whether rows are rewritten for the first time, or again: the first row of a piece of a split file, whose head
// the previous piece's writer rewrote too (piece_plan.h). Rows rewritten again give the same bytes and are not
// measured again (a quantization's error counts each row once, whatever the split).
enum class RowVisit { kFirst, kAgain };

class RowTransform {
 public:
  virtual ~RowTransform() = default;

  // True when this transform never drops or changes anything (the export is then a byte-exact copy).
  virtual bool is_identity() const = 0;
  // Whether this transform may drop slots or dense tensors at all.
  virtual bool drops_anything() const;
  // Whether the slot's rows survive this transform.
  virtual bool keeps(const SlotRef& slot) const;
  // Whether a dense tensor of the source ("name^ ", e.g. an optimizer scalar) is exported.
  virtual bool keeps_dense(const std::string& name) const;
  // Whether this transform changes the bytes of this slot's rows. Asked only of kept slots.
  virtual bool rewrites(const SlotRef& slot) const;
  // The layout after rewrite(), or an error if these rows cannot be rewritten (kBadInput naming slot.file).
  virtual Result<RowLayout> rewritten_layout(const SlotRef& slot, const RowLayout& in) const;
  // Rewrites `rows` rows from `in` (layout `from`) into `out` (layout `to`, room for rows * to.row_bytes()).
  // `first_row` is the index of in's first row in its tensor, for messages.
  virtual Status rewrite(const SlotRef& slot, const RowLayout& from, const RowLayout& to, const unsigned char* in,
                         uint64_t rows, uint64_t first_row, unsigned char* out, RowVisit visit) const;
};

// One slot's rows through the chain, checked once by RowTransformChain::prepare: kept or not, the layout before
// and after, and the transforms that change the bytes (none: the rows are copied as they are).
class SlotRows {
 public:
  bool kept() const { return kept_; }
  bool rewritten() const { return !steps_.empty(); }
  const SlotRef& slot() const { return slot_; }
  const RowLayout& source() const { return source_; }
  const RowLayout& output() const { return steps_.empty() ? source_ : steps_.back().to; }

  // Rewrites `rows` source rows into output rows (out resized to rows * output().row_bytes()).
  Status apply(const unsigned char* in, uint64_t rows, uint64_t first_row, std::vector<unsigned char>& out) const;
  // The same into `out`, which has room for rows * output().row_bytes() (e.g. the rest of the buffer the rows
  // were read into, so that rewriting needs no memory besides that buffer).
  Status apply(const unsigned char* in, uint64_t rows, uint64_t first_row, unsigned char* out,
               RowVisit visit = RowVisit::kFirst) const;

 private:
  friend class RowTransformChain;
  struct Step {
    const RowTransform* transform;
    RowLayout from, to;
  };
  SlotRef slot_;
  bool kept_ = true;
  RowLayout source_;
  std::vector<Step> steps_;
};

class RowTransformChain {
 public:
  RowTransformChain() = default;
  RowTransformChain(RowTransformChain&&) = default;
  RowTransformChain& operator=(RowTransformChain&&) = default;

  void add(std::unique_ptr<RowTransform> transform) { transforms_.push_back(std::move(transform)); }
  // The ledger its serving-dtype conversion records each table's error into (null: none converts), so that a
  // --resume run can add what an adopted range's conversion recorded (sinks/row_table_files.h).
  void set_quantization(QuantizationLedger* ledger) { quantization_ = ledger; }
  QuantizationLedger* quantization() const { return quantization_; }

  bool is_identity() const;
  bool drops_anything() const;
  bool keeps_dense(const std::string& name) const;
  // The slot's rows through every transform in order (a dropped slot stops there). Errors come from the first
  // transform that cannot take the rows.
  Result<SlotRows> prepare(const SlotRef& slot, const RowLayout& source) const;

 private:
  std::vector<std::unique_ptr<RowTransform>> transforms_;
  QuantizationLedger* quantization_ = nullptr;
};

}  // namespace recis_convert
