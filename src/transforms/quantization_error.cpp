#include "recis_convert/transforms/quantization_error.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace recis_convert {

std::string describe(const QuantizationFigures& f) {
  char text[160];
  std::snprintf(text, sizeof text, "max_abs %.4g, mean_abs %.4g, rmse %.4g, max_row_rel_l2 %.4g", f.max_abs, f.mean_abs,
                f.rmse, f.max_row_rel_l2);
  return text;
}

void QuantizationError::add_row(const float* x, const float* y, size_t dim) {
  double row_abs = 0, row_squared = 0, row_norm_squared = 0;
  for (size_t i = 0; i < dim; ++i) {
    const double source = x[i];
    const double difference = static_cast<double>(y[i]) - source;
    const double magnitude = std::fabs(difference);
    row_abs += magnitude;
    row_squared += difference * difference;
    row_norm_squared += source * source;
    max_abs = std::max(max_abs, magnitude);
  }
  abs_sum.add(row_abs);
  squared_sum.add(row_squared);
  // sqrt and division only for a row that may beat the maximum: the test on squares has a margin far above its
  // rounding error, so a row it skips is certainly below, and the result is the same.
  const double bound = max_row_rel_l2 * max_row_rel_l2 * row_norm_squared * (1 - 1e-9);
  if (row_norm_squared > 0 && row_squared >= bound) {
    max_row_rel_l2 = std::max(max_row_rel_l2, std::sqrt(row_squared) / std::sqrt(row_norm_squared));
  }
  rows += 1;
  elements += dim;
}

void QuantizationError::add(const QuantizationError& other) {
  rows += other.rows;
  elements += other.elements;
  abs_sum.add(other.abs_sum);
  squared_sum.add(other.squared_sum);
  max_abs = std::max(max_abs, other.max_abs);
  max_row_rel_l2 = std::max(max_row_rel_l2, other.max_row_rel_l2);
}

QuantizationFigures QuantizationError::figures() const {
  QuantizationFigures f;
  f.max_abs = max_abs;
  f.max_row_rel_l2 = max_row_rel_l2;
  if (elements > 0) {
    const double n = static_cast<double>(elements);
    f.mean_abs = abs_sum.value() / n;
    f.rmse = std::sqrt(squared_sum.value() / n);
  }
  return f;
}

std::string TableQuantization::source_dtype() const {
  std::string out;
  for (const auto& d : source_dtypes) out += (out.empty() ? "" : ",") + d;
  return out;
}

void QuantizationLedger::note_table(const std::string& table, ServingDType dtype, uint64_t dim,
                                    const std::string& source_dtype) {
  TableQuantization& t = tables[table];
  t.dtype = dtype;
  t.dim = dim;
  t.source_dtypes.insert(source_dtype);
}

void QuantizationLedger::add(const QuantizationLedger& other) {
  for (const auto& [name, theirs] : other.tables) {
    TableQuantization& ours = tables[name];
    ours.dtype = theirs.dtype;
    ours.dim = theirs.dim;
    ours.source_dtypes.insert(theirs.source_dtypes.begin(), theirs.source_dtypes.end());
    ours.error.add(theirs.error);
  }
}

}  // namespace recis_convert
