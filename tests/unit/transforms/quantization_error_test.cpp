#include "recis_convert/transforms/quantization_error.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace recis_convert {
namespace {

TEST(QuantizationErrorTest, FiguresOfOneRow) {
  QuantizationError e;
  const float x[] = {1.0f, 2.0f}, y[] = {1.5f, 2.0f};
  e.add_row(x, y, 2);
  const QuantizationFigures f = e.figures();
  EXPECT_EQ(f.max_abs, 0.5);
  EXPECT_EQ(f.mean_abs, 0.25);
  EXPECT_EQ(f.rmse, std::sqrt(0.125));
  EXPECT_EQ(f.max_row_rel_l2, std::sqrt(0.25) / std::sqrt(5.0));
  EXPECT_EQ(e.rows, 1u);
  EXPECT_EQ(e.elements, 2u);
}

TEST(QuantizationErrorTest, ARowOfZeroNormHasNoRelativeError) {
  QuantizationError e;
  const float x[] = {0.0f, 0.0f}, y[] = {0.25f, 0.0f};
  e.add_row(x, y, 2);
  EXPECT_EQ(e.figures().max_row_rel_l2, 0.0);
  EXPECT_EQ(e.figures().max_abs, 0.25);
}

TEST(QuantizationErrorTest, RowsSplitAnyWayMergeToTheSameBits) {
  std::vector<float> x(4000), y(4000);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = std::sin(static_cast<float>(i) * 0.37f) * 3.0f;
    y[i] = x[i] + std::cos(static_cast<float>(i)) * 1e-3f;
  }
  QuantizationError whole, a, b, c;
  for (size_t r = 0; r < 1000; ++r) whole.add_row(&x[r * 4], &y[r * 4], 4);
  for (size_t r = 0; r < 1000; ++r) (r < 123 ? a : r < 700 ? b : c).add_row(&x[r * 4], &y[r * 4], 4);
  c.add(a);  // merged in another order than the rows came
  c.add(b);
  EXPECT_TRUE(c.abs_sum == whole.abs_sum);
  EXPECT_TRUE(c.squared_sum == whole.squared_sum);
  EXPECT_EQ(c.figures().mean_abs, whole.figures().mean_abs);
  EXPECT_EQ(c.figures().rmse, whole.figures().rmse);
  EXPECT_EQ(c.figures().max_abs, whole.figures().max_abs);
  EXPECT_EQ(c.figures().max_row_rel_l2, whole.figures().max_row_rel_l2);
  EXPECT_EQ(c.rows, 1000u);
}

TEST(QuantizationErrorTest, LedgersMergeTablesAndSourceDtypes) {
  QuantizationLedger rank0, rank1;
  rank0.note_table("user", ServingDType::kInt4, 8, "F32");
  rank1.note_table("user", ServingDType::kInt4, 8, "F16");
  rank1.note_table("item", ServingDType::kFp16, 4, "BF16");
  const float x[] = {1, 2, 3, 4, 5, 6, 7, 8}, y[] = {1, 2, 3, 4, 5, 6, 7, 9};
  rank1.tables["user"].error.add_row(x, y, 8);
  rank0.add(rank1);
  ASSERT_EQ(rank0.tables.size(), 2u);
  EXPECT_EQ(rank0.tables["user"].source_dtype(), "F16,F32");
  EXPECT_EQ(rank0.tables["user"].error.rows, 1u);
  EXPECT_EQ(rank0.tables["item"].dtype, ServingDType::kFp16);
}

}  // namespace
}  // namespace recis_convert
