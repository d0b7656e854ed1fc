#include "recis_convert/transforms/serving_dtype.h"

#include <gtest/gtest.h>

namespace recis_convert {
namespace {

TEST(ServingDTypeTest, NamesParseAnyCaseAndUnknownOnesDoNot) {
  EXPECT_EQ(parse_serving_dtype("INT4"), ServingDType::kInt4);
  EXPECT_EQ(parse_serving_dtype("none"), ServingDType::kNone);
  EXPECT_FALSE(parse_serving_dtype("int3"));
  EXPECT_EQ(option_name(ServingDType::kBf16), "bf16");
  EXPECT_EQ(quantization_name(ServingDType::kInt2), "int2_rowwise");
  EXPECT_EQ(quantization_name(ServingDType::kFp16), "fp16");
  EXPECT_EQ(quantization_name(ServingDType::kNone), "");
}

TEST(ServingDTypeTest, RowWidthsArePyTorchsAndInvert) {
  EXPECT_EQ(serving_row_width(ServingDType::kFp16, 64), 64u);
  EXPECT_EQ(serving_row_width(ServingDType::kInt8, 64), 72u);
  EXPECT_EQ(serving_row_width(ServingDType::kInt4, 64), 36u);
  EXPECT_EQ(serving_row_width(ServingDType::kInt2, 64), 20u);
  for (ServingDType d : {ServingDType::kFp16, ServingDType::kBf16, ServingDType::kInt8, ServingDType::kInt4,
                         ServingDType::kInt2}) {
    EXPECT_EQ(original_dim(d, serving_row_width(d, 64)), 64u) << option_name(d);
  }
  EXPECT_EQ(stored_dtype(ServingDType::kBf16), DType::kBF16);
  EXPECT_EQ(stored_dtype(ServingDType::kInt2), DType::kU8);
}

TEST(ServingDTypeTest, PackedDtypesNeedWholeBytesOfCodes) {
  EXPECT_FALSE(dim_problem(ServingDType::kInt4, 6));
  EXPECT_TRUE(dim_problem(ServingDType::kInt4, 5));
  EXPECT_TRUE(dim_problem(ServingDType::kInt2, 6));
  EXPECT_FALSE(dim_problem(ServingDType::kInt2, 8));
  EXPECT_FALSE(dim_problem(ServingDType::kInt8, 7));
}

TEST(ServingDTypeTest, ATableOverrideWinsOverTheDefault) {
  EmbeddingDTypes d;
  EXPECT_FALSE(d.any());
  d.tables["small"] = ServingDType::kFp16;
  EXPECT_TRUE(d.any());
  d.all = ServingDType::kInt4;
  d.tables["exact"] = ServingDType::kNone;
  EXPECT_EQ(d.of("small"), ServingDType::kFp16);
  EXPECT_EQ(d.of("exact"), ServingDType::kNone);
  EXPECT_EQ(d.of("other"), ServingDType::kInt4);
}

}  // namespace
}  // namespace recis_convert
