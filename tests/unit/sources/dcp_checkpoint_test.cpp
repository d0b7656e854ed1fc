// Finding a DCP checkpoint in TorchEasyRec's layouts, and its tables by torchrec's naming, on the torch 2.6 fixture.
#include "recis_convert/sources/dcp_checkpoint.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "test_files.h"

namespace recis_convert {
namespace {

const std::string kFixture = std::string(RECIS_SOURCE_DIR) + "/tests/fixtures/dcp-torch2.6";

// <dir>/<name>/model/.metadata, a copy of the fixture's
void make_checkpoint(const testing::TempDir& dir, const std::string& name) {
  ASSERT_EQ(::mkdir(dir.file(name).c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(dir.file(name + "/model").c_str(), 0755), 0);
  testing::write_file(dir.file(name + "/model/.metadata"), testing::read_file(kFixture + "/model/.metadata"));
}

TEST(DcpCheckpointTest, AModelDirectoryGivesItsLargestStepByInteger) {
  testing::TempDir dir;
  for (const char* name : {"model.ckpt-900", "model.ckpt-1200", "model.ckpt-950"}) make_checkpoint(dir, name);
  ASSERT_EQ(::mkdir(dir.file("model.ckpt-5000.tmp").c_str(), 0755), 0);  // not a checkpoint's name
  auto found = locate_dcp_checkpoint(dir.path());
  ASSERT_TRUE(found) << found.error().describe();
  EXPECT_EQ(found.value().dcp_dir, dir.file("model.ckpt-1200/model"));
  EXPECT_EQ(found.value().checkpoint_dir, dir.file("model.ckpt-1200"));
  EXPECT_EQ(found.value().step, 1200);
}

TEST(DcpCheckpointTest, ACheckpointOrItsDcpDirectoryGivesItsStep) {
  testing::TempDir dir;
  make_checkpoint(dir, "model.ckpt-300");
  for (const std::string& path : {dir.file("model.ckpt-300"), dir.file("model.ckpt-300/model/")}) {
    auto found = locate_dcp_checkpoint(path);
    ASSERT_TRUE(found) << found.error().describe();
    EXPECT_EQ(found.value().dcp_dir, dir.file("model.ckpt-300/model"));
    EXPECT_EQ(found.value().step, 300);
  }
  auto bare = locate_dcp_checkpoint(kFixture + "/model");  // not in a model.ckpt-<step>: no step
  ASSERT_TRUE(bare);
  EXPECT_FALSE(bare.value().step);
}

TEST(DcpCheckpointTest, AnUnfinishedSaveIsRefused) {
  testing::TempDir dir;
  make_checkpoint(dir, "model.ckpt-7");
  ASSERT_EQ(::unlink(dir.file("model.ckpt-7/model/.metadata").c_str()), 0);
  auto found = locate_dcp_checkpoint(dir.file("model.ckpt-7"));
  ASSERT_FALSE(found);
  EXPECT_NE(found.error().describe().find("model.ckpt-7/model/.metadata: missing"), std::string::npos);
  EXPECT_FALSE(locate_dcp_checkpoint(dir.file("model.ckpt-7/model")));
}

TEST(DcpCheckpointTest, TablesByTorchrecsNamingAndEverythingElseDense) {
  auto location = locate_dcp_checkpoint(kFixture + "/model");
  ASSERT_TRUE(location);
  auto metadata = read_dcp_metadata(location.value().dcp_dir);
  ASSERT_TRUE(metadata);
  auto described = describe_dcp_checkpoint(location.value(), std::move(metadata).value());
  ASSERT_TRUE(described) << described.error().describe();
  std::vector<std::string> names;
  for (const auto& t : described.value().tables) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"cate", "item_id", "seq_item", "user_id", "zch_user"}));
  EXPECT_EQ(described.value().tables.back().managed_collision.size(), 2u);  // zch_user's _mch_* buffers
  EXPECT_EQ(described.value().dense.size(), 8u);  // the MLP, BatchNorm and the table-like decoy
}

TEST(DcpCheckpointTest, TorchrecsNamesAndNothingElse) {
  DcpMetadata md;
  md.path = "m/.metadata";
  for (const char* fqn : {"embedding_bags.bare.weight", "m.ec.embeddings.seq.weight", "m.embedding_bags_proj.weight",
                          "m.ebc.embedding_bags.t.bias", "m.embedding_bags.weight", "m.mc._managed_collision_modules.seq._mch_counts",
                          "m.mc._managed_collision_modules.seq.other"}) {
    md.tensors.push_back(DcpTensor{fqn, DType::kF32, {4, 2}, {}});
  }
  auto described = describe_dcp_checkpoint(DcpLocation{}, md);
  ASSERT_TRUE(described) << described.error().describe();
  ASSERT_EQ(described.value().tables.size(), 2u);
  EXPECT_EQ(described.value().tables[0].name, "bare");
  EXPECT_EQ(described.value().tables[1].name, "seq");
  ASSERT_EQ(described.value().tables[1].managed_collision.size(), 1u);
  EXPECT_EQ(described.value().dense.size(), 4u);  // the decoy, a bias, a nameless table, a buffer not _mch_
}

TEST(DcpCheckpointTest, ATableThatIsNotA2dFloatTensorIsRefused) {
  DcpMetadata md;
  md.path = "m/.metadata";
  md.tensors.push_back(DcpTensor{"ebc.embedding_bags.t.weight", DType::kI64, {4, 2}, {}});
  auto described = describe_dcp_checkpoint(DcpLocation{}, md);
  ASSERT_FALSE(described);
  EXPECT_NE(described.error().describe().find("is named as embedding table \"t\" but is a int64 [4,2] tensor"),
            std::string::npos)
      << described.error().describe();
}

TEST(DcpCheckpointTest, TwoTensorsNamingOneTableAreRefused) {
  DcpMetadata md;
  md.path = "m/.metadata";
  md.tensors.push_back(DcpTensor{"a.ebc.embedding_bags.t.weight", DType::kF32, {4, 2}, {}});
  md.tensors.push_back(DcpTensor{"b.ec.embeddings.t.weight", DType::kF32, {4, 2}, {}});
  auto described = describe_dcp_checkpoint(DcpLocation{}, md);
  ASSERT_FALSE(described);
  EXPECT_NE(described.error().describe().find("\"b.ec.embeddings.t.weight\" names table \"t\", which another tensor"),
            std::string::npos);
}

}  // namespace
}  // namespace recis_convert
