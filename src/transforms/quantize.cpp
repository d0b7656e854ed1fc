#include "recis_convert/transforms/quantize.h"

#include <vector>

#include "recis_convert/transforms/embedding_codecs.h"

namespace recis_convert {

bool EmbeddingQuantizer::rewrites(const SlotRef& slot) const {
  return slot.slot == "embedding" && dtypes_.of(slot.table) != ServingDType::kNone;
}

Result<RowLayout> EmbeddingQuantizer::rewritten_layout(const SlotRef& slot, const RowLayout& in) const {
  const ServingDType dtype = dtypes_.of(slot.table);
  const std::string what = "table " + quoted_name(slot.table) + " (embedding tensor " + quoted_name(slot.tensor) + ")";
  if (in.row_shape.size() != 1 || !can_quantize(in.dtype) || !in.encoding.empty()) {
    return bad_input(slot.file, what + ", " + in.dtype_spelling + " " + std::to_string(in.row_shape.size() + 1) +
                                    "-D, cannot become " + option_name(dtype) +
                                    ": that needs 2-D F32, F16, BF16 or F64 rows");
  }
  const uint64_t dim = in.row_shape[0];
  if (auto problem = dim_problem(dtype, dim)) {
    return bad_input(slot.file, what + " has dim " + std::to_string(dim) + ": " + *problem);
  }
  RowLayout out;
  out.dtype = stored_dtype(dtype);
  out.dtype_spelling = dtype_spelling(out.dtype);
  out.row_shape = {serving_row_width(dtype, dim)};
  out.encoding = quantization_name(dtype);
  if (ledger_) ledger_->note_table(slot.table, dtype, dim, in.dtype_spelling);
  return out;
}

Status EmbeddingQuantizer::rewrite(const SlotRef& slot, const RowLayout& from, const RowLayout& to,
                                   const unsigned char* in, uint64_t rows, uint64_t first_row,
                                   unsigned char* out, RowVisit visit) const {
  const ServingDType dtype = dtypes_.of(slot.table);
  const uint64_t dim = from.row_shape[0];
  const uint64_t in_row = from.row_bytes(), out_row = to.row_bytes();
  QuantizationError* error = ledger_ && visit == RowVisit::kFirst ? &ledger_->tables[slot.table].error : nullptr;
  std::vector<float> row(dim), restored(dim);
  for (uint64_t r = 0; r < rows; ++r) {
    to_float32(from.dtype, in + r * in_row, dim, row.data());
    const EncodeVerdict verdict = encode_row(dtype, row.data(), dim, out + r * out_row);
    if (verdict != EncodeVerdict::kOk) {
      const std::string where = "table " + quoted_name(slot.table) + ", tensor " + quoted_name(slot.tensor) + " row " +
                                std::to_string(first_row + r);
      return bad_input(slot.file, verdict == EncodeVerdict::kNotFinite
                                      ? where + " holds a NaN or infinite value: it cannot be converted to " +
                                            option_name(dtype)
                                      : where + " holds values that " + option_name(dtype) +
                                            " cannot represent: they would become infinite");
    }
    if (error) {
      decode_row(dtype, out + r * out_row, dim, restored.data());
      error->add_row(row.data(), restored.data(), dim);
    }
  }
  return Ok{};
}

}  // namespace recis_convert
