// --quantize-embeddings / --quantize-table: every table's `embedding` rows into its serving dtype
// (serving_dtype.h: fp16, bf16, int8, int4, int2, PyTorch's layouts), and the error that cost, per table, into a
// QuantizationLedger. Other slots pass unchanged. The rows are read as float32 first (embedding_codecs.h).
#pragma once

#include <cstdint>

#include "recis_convert/transforms/quantization_error.h"
#include "recis_convert/transforms/row_transform.h"
#include "recis_convert/transforms/serving_dtype.h"

namespace recis_convert {

class EmbeddingQuantizer : public RowTransform {
 public:
  // `ledger` receives every converted table and its error; it must outlive the transform. May be null (no report).
  EmbeddingQuantizer(EmbeddingDTypes dtypes, QuantizationLedger* ledger)
      : dtypes_(std::move(dtypes)), ledger_(ledger) {}

  bool is_identity() const override { return false; }
  bool rewrites(const SlotRef& slot) const override;
  // Needs 2-D rows of F32, F16, BF16 or F64 with a dim the dtype allows; else bad input naming the table.
  Result<RowLayout> rewritten_layout(const SlotRef& slot, const RowLayout& in) const override;
  // A row with a NaN or infinity, or a value the dtype cannot hold, is bad input naming the table and the row.
  Status rewrite(const SlotRef& slot, const RowLayout& from, const RowLayout& to, const unsigned char* in,
                 uint64_t rows, uint64_t first_row, unsigned char* out, RowVisit visit) const override;

 private:
  EmbeddingDTypes dtypes_;
  QuantizationLedger* ledger_;
};

}  // namespace recis_convert
