// What converting a table's embeddings to its serving dtype cost in accuracy, measured on every row as it is
// converted (no second pass), against the float32 source row x and what PyTorch gives back (y = decode_row):
//   max_abs          the largest |y - x|
//   mean_abs         the mean |y - x| over all elements
//   rmse             sqrt(mean (y - x)^2)
//   max_row_rel_l2   the largest ||y - x|| / ||x|| over rows with ||x|| > 0
// In double: each row's sums in element order, the rows' sums added exactly (ExactSum), so the figures are the
// same whatever the number of ranks and however the rows were split between them.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "recis_convert/common/exact_sum.h"
#include "recis_convert/transforms/serving_dtype.h"

namespace recis_convert {

struct QuantizationFigures {
  double max_abs = 0;
  double mean_abs = 0;
  double rmse = 0;
  double max_row_rel_l2 = 0;
};

// "max_abs 0.0123, mean_abs ..., rmse ..., max_row_rel_l2 ..." (4 significant digits), as the closing summary and
// inspect print them.
std::string describe(const QuantizationFigures& f);

struct QuantizationError {
  uint64_t rows = 0;
  uint64_t elements = 0;
  ExactSum abs_sum;      // of |y - x|
  ExactSum squared_sum;  // of (y - x)^2
  double max_abs = 0;
  double max_row_rel_l2 = 0;

  void add_row(const float* x, const float* y, size_t dim);
  void add(const QuantizationError& other);
  QuantizationFigures figures() const;
};

// One converted table: its serving dtype, what its source rows were, and the error.
struct TableQuantization {
  ServingDType dtype = ServingDType::kNone;
  uint64_t dim = 0;
  std::set<std::string> source_dtypes;  // as the headers spell them; one unless the parts disagree
  QuantizationError error;

  std::string source_dtype() const;  // the spellings joined by ","
};

// Every converted table of a rank (or, merged on rank 0, of the job), by table name.
struct QuantizationLedger {
  std::map<std::string, TableQuantization> tables;

  // A table's embedding slot will be converted (called when its layout is decided, so a table of no rows counts).
  void note_table(const std::string& table, ServingDType dtype, uint64_t dim, const std::string& source_dtype);
  void add(const QuantizationLedger& other);
};

}  // namespace recis_convert
