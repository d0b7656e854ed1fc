// The dense weights a Distributed Checkpoint holds, on the torch 2.6 fixture: listed from its metadata, each read
// whole from its chunks (tensors of any shape; a sharded one set together as torch loads it).
#include "recis_convert/dense/dense_weights.h"

#include <gtest/gtest.h>

#include <cstring>

#include "dcp_fixture.h"
#include "recis_convert/sources/dcp_columns.h"
#include "recis_convert/sources/dcp_export.h"
#include "recis_convert/transforms/job_transforms.h"
#include "test_files.h"

namespace recis_convert {
namespace {

TEST(DenseWeightsTest, ADcpsDenseTensorsAreItsWeightsReadWhole) {
  const DcpCheckpoint checkpoint = testing::dcp_fixture_checkpoint();
  SourceDescription source;
  source.kind = SourceKind::kDcp;
  source.row_tables = dcp_row_tables(checkpoint, make_row_transforms(false, {}, {})).value();
  source.dense = checkpoint.dense;
  auto opened = open_dense_weights(source);
  ASSERT_TRUE(opened) << opened.error().describe();
  const DenseWeights& weights = *opened.value();
  EXPECT_EQ(weights.path(), testing::kDcpFixture + "/model/.metadata");
  ASSERT_EQ(weights.weights().size(), checkpoint.dense.size());
  bool counted = false;
  for (size_t i = 0; i < weights.weights().size(); ++i) {
    const DenseWeight& w = weights.weights()[i];
    auto bytes = weights.bytes(i);
    ASSERT_TRUE(bytes) << w.name << ": " << bytes.error().describe();
    uint64_t elements = 1;
    for (uint64_t d : w.shape) elements *= d;
    EXPECT_EQ(bytes.value().size(), elements * dtype_bits(w.dtype) / 8) << w.name;
    if (w.name == "model.dense.bn.num_batches_tracked") {  // 0-d int64: the step the fixture was written at
      ASSERT_EQ(bytes.value().size(), 8u);
      int64_t count = 0;
      std::memcpy(&count, bytes.value().data(), 8);
      EXPECT_EQ(count, 100);
      counted = true;
    }
  }
  EXPECT_TRUE(counted);
}

// Any tensor read whole is what torch's own load builds: the row-wise and the column-wise tables, set together
// from their chunks, equal the fixture's truth.
TEST(DenseWeightsTest, AShardedTensorReadWholeIsTorchsLoad) {
  const DcpCheckpoint checkpoint = testing::dcp_fixture_checkpoint();
  for (const DcpTable& table : checkpoint.tables) {
    auto whole = read_dcp_tensor(testing::kDcpFixture + "/model", table.weight, 1u << 30);
    ASSERT_TRUE(whole) << table.name << ": " << whole.error().describe();
    EXPECT_TRUE(whole.value() == testing::read_file(testing::kDcpFixture + "/truth/" + table.name + ".bin"))
        << table.name;
  }
  auto capped = read_dcp_tensor(testing::kDcpFixture + "/model", checkpoint.tables[0].weight, 1000);
  ASSERT_FALSE(capped);
  EXPECT_NE(capped.error().describe().find("more than a dense weight may"), std::string::npos);
}

}  // namespace
}  // namespace recis_convert
