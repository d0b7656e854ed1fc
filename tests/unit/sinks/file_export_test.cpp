#include "message_round_trip.h"
#include "recis_convert/mpi/job_messages.h"
#include "recis_convert/sinks/file_export.h"

#include <gtest/gtest.h>

#include "block_catalogs.h"

#include "recis_convert/common/checksum.h"
#include "recis_convert/transforms/job_transforms.h"
#include "test_files.h"

namespace recis_convert {
namespace {

using testing::TempDir;

class FileExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_small_checkpoint(source_.path());
    auto listing = discover_checkpoint(source_.path());
    ASSERT_TRUE(listing) << listing.error().describe();
    listing_ = listing.value();
  }
  Result<FileResult> run(size_t file, bool drop_optimizer, bool dry_run = false) {
    const RowTransformChain transforms = make_row_transforms(drop_optimizer, {}, EmbeddingDTypes{});
    CopyEngine engine(4096, CopyPath::kKernelWindows, 0);
    return export_data_file(listing_, listing_.files[file], transforms, engine, {out_.path(), dry_run, nullptr});
  }
  TempDir source_, out_;
  CheckpointListing listing_;
};

TEST_F(FileExportTest, CopyModeIsByteIdentical) {
  auto result = run(1, false);
  ASSERT_TRUE(result) << result.error().describe();
  const std::string name = listing_.files[1].name;
  std::string source = testing::read_file(source_.file(name));
  std::string exported = testing::read_file(out_.file(name));
  EXPECT_EQ(exported, source);
  EXPECT_EQ(result.value().checksum, Checksum::of(source.data(), source.size()));
  EXPECT_EQ(result.value().kept.size(), 2u);
  EXPECT_TRUE(result.value().dropped.empty());
}

TEST_F(FileExportTest, FilterModeRewritesTheHeaderAndCopiesKeptBytes) {
  auto result = run(1, true);
  ASSERT_TRUE(result) << result.error().describe();
  std::string exported = testing::read_file(out_.file(listing_.files[1].name));
  EXPECT_EQ(exported, testing::recis_file({{"user.embedding/part_0_1", "F32", {3, 2}, testing::pattern(24, 3)}}));
  ASSERT_EQ(result.value().dropped.size(), 1u);
  EXPECT_EQ(result.value().dropped[0].name, "user.sparse_adamw_exp_avg/part_0_1");
  EXPECT_EQ(result.value().output_bytes, exported.size());
}

TEST_F(FileExportTest, FilterModeDropsTheDenseOptimizerScalar) {
  auto result = run(0, true);
  ASSERT_TRUE(result);
  ASSERT_EQ(result.value().kept.size(), 1u);
  EXPECT_EQ(result.value().kept[0].name, "user.id/part_0_1");
}

TEST_F(FileExportTest, FileWithNothingKeptIsNotWritten) {
  testing::write_file(source_.file("model-000001-of-000002.safetensors"),
                      testing::recis_file({{"user.sparse_adamw_exp_avg/part_0_1", "F32", {3, 2}, testing::pattern(24, 4)},
                                           {"user.embedding/part_0_1", "F32", {3, 0}, ""}}));
  const RowTransformChain filter = make_row_transforms(true, {"embedding"}, EmbeddingDTypes{});
  CopyEngine engine(4096, CopyPath::kKernelWindows, 0);
  auto listing = discover_checkpoint(source_.path());
  ASSERT_TRUE(listing);
  auto result = export_data_file(listing.value(), listing.value().files[1], filter, engine, {out_.path(), false, nullptr});
  ASSERT_TRUE(result) << result.error().describe();
  EXPECT_FALSE(result.value().written);
  EXPECT_FALSE(testing::path_exists(out_.file("model-000001-of-000002.safetensors")));
}

TEST_F(FileExportTest, DryRunWritesNothing) {
  auto result = run(1, true, true);
  ASSERT_TRUE(result);
  EXPECT_TRUE(result.value().written);
  EXPECT_FALSE(testing::path_exists(out_.file(listing_.files[1].name)));
}

TEST_F(FileExportTest, TensorIndexedInAnotherFileIsBadInput) {
  listing_.blocks = testing::with_block(listing_.blocks, "user.embedding/part_0_1", 0,
                                       std::string(listing_.blocks.find("user.embedding/part_0_1")->logical));
  auto result = run(1, false);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ExitCode::kBadInput);
  EXPECT_NE(result.error().message.find("is indexed in model-000000"), std::string::npos);
  EXPECT_FALSE(testing::path_exists(out_.file(listing_.files[1].name)));
}

TEST_F(FileExportTest, TensorMissingFromIndexIsBadInput) {
  listing_.blocks = testing::with_block(listing_.blocks, "user.embedding/part_0_1", BlockCatalog::kNotIndexed,
                                       std::string(listing_.blocks.find("user.embedding/part_0_1")->logical));
  auto result = run(1, false);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("not in the checkpoint's index"), std::string::npos);
}

TEST_F(FileExportTest, UnclassifiableKeyIsBadInput) {
  listing_.blocks = testing::with_block(listing_.blocks, "user.embedding/part_0_1", 1, "");
  auto result = run(1, true);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("neither in tensorkey.json"), std::string::npos);
}

TEST_F(FileExportTest, SizeChangedSinceDiscoveryIsBadInput) {
  listing_.files[1].size += 1;
  auto result = run(1, false);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("since discovery"), std::string::npos);
}

TEST_F(FileExportTest, ResultsSurviveTheMessageRoundTrip) {
  auto result = run(1, true);
  ASSERT_TRUE(result);
  auto back = testing::round_trip(std::vector<FileResult>{result.value()});
  ASSERT_TRUE(back);
  ASSERT_EQ(back.value().size(), 1u);
  EXPECT_EQ(back.value()[0].checksum, result.value().checksum);
  ASSERT_EQ(back.value()[0].kept.size(), 1u);
  ASSERT_EQ(back.value()[0].dropped.size(), 1u);
  EXPECT_EQ(back.value()[0].kept[0].shape, (std::vector<uint64_t>{3, 2}));
  EXPECT_EQ(back.value()[0].dropped[0].name, "user.sparse_adamw_exp_avg/part_0_1");
}

}  // namespace
}  // namespace recis_convert
