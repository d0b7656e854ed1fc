// A Distributed Checkpoint's tables as row tables, on the torch 2.6 fixture: their files, layouts and readers, what
// travels between ranks, and the names RecIS's keys cannot hold.
#include "recis_convert/sources/dcp_export.h"

#include <gtest/gtest.h>

#include <cstring>

#include "dcp_fixture.h"
#include "message_round_trip.h"
#include "recis_convert/mpi/job_messages.h"
#include "recis_convert/transforms/job_transforms.h"

namespace recis_convert {
namespace {

TEST(DcpExportTest, EveryTableInNameOrderWithItsIdsAndEmbeddingsInItsOwnDtype) {
  auto tables = dcp_row_tables(testing::dcp_fixture_checkpoint(), make_row_transforms(false, {}, {}));
  ASSERT_TRUE(tables) << tables.error().describe();
  const RowTables& model = tables.value();
  EXPECT_EQ(model.source_path, testing::kDcpFixture + "/model");
  EXPECT_EQ(model.ckpt_id, "model");  // not in a model.ckpt-<step>: the DCP directory is the checkpoint
  ASSERT_EQ(model.tables.size(), 5u);
  const std::vector<std::string> names = {"cate", "item_id", "seq_item", "user_id", "zch_user"};
  const std::vector<std::string> dtypes = {"F16", "F32", "BF16", "F32", "F32"};
  const std::vector<std::vector<uint64_t>> shapes = {{500, 12}, {777, 8}, {300, 8}, {1000, 16}, {200, 8}};
  for (size_t i = 0; i < names.size(); ++i) {
    const RowTable& t = model.tables[i];
    EXPECT_EQ(t.name, names[i]);
    EXPECT_EQ(t.file, "model-00000" + std::to_string(i) + "-of-000005.safetensors");
    ASSERT_EQ(t.tensors.size(), 2u);
    EXPECT_EQ(t.tensors[0].name, names[i] + ".id/part_0_1");
    EXPECT_EQ(t.tensors[0].dtype_spelling, "I64");
    EXPECT_EQ(t.tensors[0].shape, std::vector<uint64_t>{shapes[i][0]});
    EXPECT_EQ(t.tensors[1].name, names[i] + ".embedding/part_0_1");
    EXPECT_EQ(t.tensors[1].dtype_spelling, dtypes[i]);
    EXPECT_EQ(t.tensors[1].shape, shapes[i]);
    const uint64_t element = dtypes[i] == "F32" ? 4 : 2;
    EXPECT_EQ(t.source_bytes(), shapes[i][0] * shapes[i][1] * element);  // the ids are not read
  }
  const CheckpointListing listing = row_tables_listing(model);
  EXPECT_EQ(listing.files.size(), 5u);
  EXPECT_EQ(listing.blocks.size(), 10u);
}

TEST(DcpExportTest, AServingDtypeConvertsEveryTableWhateverItsOwnDtype) {
  EmbeddingDTypes fp16;
  fp16.all = ServingDType::kFp16;
  auto tables = dcp_row_tables(testing::dcp_fixture_checkpoint(), make_row_transforms(false, {}, fp16));
  ASSERT_TRUE(tables) << tables.error().describe();
  for (const RowTable& t : tables.value().tables) EXPECT_EQ(t.tensors[1].dtype_spelling, "F16") << t.name;
}

TEST(DcpExportTest, ATableTravelsAsItsSourceAndReadsItsRowIndicesAsIds) {
  auto tables = dcp_row_tables(testing::dcp_fixture_checkpoint(), make_row_transforms(false, {}, {}));
  ASSERT_TRUE(tables);
  auto received = testing::round_trip(tables.value());
  ASSERT_TRUE(received) << received.error().describe();
  RowTables& model = received.value();
  ASSERT_TRUE(lay_out_row_tables(model, make_row_transforms(false, {}, {})));
  for (size_t i = 0; i < model.tables.size(); ++i) {
    EXPECT_EQ(model.tables[i].preamble, tables.value().tables[i].preamble) << model.tables[i].name;
  }
  const RowTable& user = model.tables[3];
  auto reader = user.source.open_rows();
  std::vector<int64_t> ids(3);
  std::vector<float> rows(3 * 16);
  unsigned char* into[2] = {reinterpret_cast<unsigned char*>(ids.data()), reinterpret_cast<unsigned char*>(rows.data())};
  ASSERT_TRUE(reader->read(333, 3, nullptr, into));  // across the first two ranks' chunks (334 rows each)
  EXPECT_EQ(ids, (std::vector<int64_t>{333, 334, 335}));
}

TEST(DcpExportTest, ATableNameRecisKeysCannotHoldIsRefusedNamingTheTensor) {
  DcpCheckpoint checkpoint = testing::dcp_fixture_checkpoint();
  checkpoint.tables[1].name = "item@id";
  auto tables = dcp_row_tables(checkpoint, make_row_transforms(false, {}, {}));
  ASSERT_FALSE(tables);
  EXPECT_EQ(tables.error().code, ExitCode::kBadInput);
  EXPECT_NE(tables.error().describe().find("embedding_bags.item_id.weight\": table name \"item@id\""),
            std::string::npos)
      << tables.error().describe();
  checkpoint.tables.clear();
  auto none = dcp_row_tables(checkpoint, make_row_transforms(false, {}, {}));
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().describe().find(".metadata: names no embedding table"), std::string::npos);
}

}  // namespace
}  // namespace recis_convert
