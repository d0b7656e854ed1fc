#include "recis_convert/sinks/reshard_writer.h"

#include <gtest/gtest.h>

#include "recis_convert/common/checksum.h"
#include "recis_convert/pipeline/reshard_stage.h"
#include "recis_convert/sinks/shared_file_checksums.h"
#include "recis_convert/transforms/job_transforms.h"
#include "test_files.h"

namespace recis_convert {
namespace {

using testing::TempDir;

// One table in one part: ids whose residues fall in both halves of 65536, embedding rows [i, -i] for row i.
const std::vector<int64_t> kIds = {5, 65535, 1, 32768, -1, 7};

std::string embedding_rows(const std::vector<size_t>& rows) {
  std::vector<float> values;
  for (size_t r : rows) {
    values.push_back(static_cast<float>(r));
    values.push_back(-static_cast<float>(r));
  }
  return testing::raw_bytes(values);
}

class ReshardWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_file(source_.file("model-000000-of-000002.safetensors"),
                        testing::recis_file({{"t.embedding/part_0_1", "F32", {6, 2}, embedding_rows({0, 1, 2, 3, 4, 5})},
                                             {"step^ ", "I64", {1}, testing::raw_bytes(std::vector<int64_t>{42})}}));
    testing::write_file(source_.file("model-000001-of-000002.safetensors"),
                        testing::recis_file({{"t.id/part_0_1", "I64", {6}, testing::raw_bytes(kIds)}}));
    testing::write_file(source_.file("index"),
                        "{\"block_index\":{\"step^ \":0,\"t.embedding/part_0_1\":0,\"t.id/part_0_1\":1},"
                        "\"file_index\":{\"model-000000-of-000002.safetensors\":0,"
                        "\"model-000001-of-000002.safetensors\":1}}");
    testing::write_file(source_.file("tensorkey.json"),
                        "{\"t.embedding/part_0_1\": \"t@embedding^00000@65536@65536\","
                        " \"t.id/part_0_1\": \"t@id^00000@65536@65536\"}");
    auto listing = discover_checkpoint(source_.path());
    ASSERT_TRUE(listing) << listing.error().describe();
    listing_ = listing.value();
  }

  // The whole stage on one rank: count, plan, create, write, describe.
  Result<std::vector<FileResult>> reshard(uint32_t count) {
    JobOptions o;
    o.reshard = count;
    SerialComm comm;
    const RowTransformChain transforms = make_row_transforms(false, {}, EmbeddingDTypes{});
    auto stage = plan_resharding(o, listing_, {0, 1}, {0, 0}, transforms, nullptr, out_.path(), comm);
    if (!stage) return stage.error();
    ReshardWriter writer(64, out_.path(), stage.value().share);  // a tiny buffer: rows in several chunks
    std::vector<FileResult> sources;
    for (const DataFile& f : listing_.files) {
      auto written = writer.write_file(listing_, f, transforms, nullptr, false);
      if (!written) return written.error();
      sources.push_back(std::move(written).value());
    }
    auto finished = writer.finish();
    if (!finished) return finished.error();
    std::vector<std::string> names;
    for (const ReshardFile& f : stage.value().layout->files) names.push_back(f.name);
    auto digests = checksum_shared_files(comm, names, out_.path(), 0);
    if (!digests) return digests.error();
    return describe_resharded_files(*stage.value().layout, out_.path(), digests.value(), false, false,
                                    std::move(sources));
  }

  TempDir source_, out_;
  CheckpointListing listing_;
};

TEST_F(ReshardWriterTest, RowsGoToThePartOfTheirIdInSourceOrder) {
  auto files = reshard(2);
  ASSERT_TRUE(files) << files.error().describe();
  ASSERT_EQ(files.value().size(), 2u);
  // residues: 5, 65535, 1, 32768, 65535, 7 -> part 0 gets rows 0, 2, 5; part 1 rows 1, 3, 4
  EXPECT_EQ(testing::read_file(out_.file("model-000000-of-000002.safetensors")),
            testing::recis_file({{"step^ ", "I64", {1}, testing::raw_bytes(std::vector<int64_t>{42})},
                                 {"t.embedding/part_0_2", "F32", {3, 2}, embedding_rows({0, 2, 5})},
                                 {"t.id/part_0_2", "I64", {3}, testing::raw_bytes(std::vector<int64_t>{5, 1, 7})}}));
  const std::string second = testing::read_file(out_.file("model-000001-of-000002.safetensors"));
  EXPECT_EQ(second, testing::recis_file({{"t.embedding/part_1_2", "F32", {3, 2}, embedding_rows({1, 3, 4})},
                                         {"t.id/part_1_2", "I64", {3},
                                          testing::raw_bytes(std::vector<int64_t>{65535, 32768, -1})}}));
  EXPECT_EQ(files.value()[1].checksum, Checksum::of(second.data(), second.size()));
  EXPECT_EQ(files.value()[0].source_bytes, listing_.files[0].size + listing_.files[1].size);  // the totals: file 0
}

TEST_F(ReshardWriterTest, OnePartIsTheRowsInSourceOrder) {
  auto files = reshard(1);
  ASSERT_TRUE(files) << files.error().describe();
  EXPECT_EQ(testing::read_file(out_.file("model-000000-of-000001.safetensors")),
            testing::recis_file({{"step^ ", "I64", {1}, testing::raw_bytes(std::vector<int64_t>{42})},
                                 {"t.embedding/part_0_1", "F32", {6, 2}, embedding_rows({0, 1, 2, 3, 4, 5})},
                                 {"t.id/part_0_1", "I64", {6}, testing::raw_bytes(kIds)}}));
}

TEST_F(ReshardWriterTest, AnIdTensorThatIsNotInt64IsBadInput) {
  testing::write_file(source_.file("model-000001-of-000002.safetensors"),
                      testing::recis_file({{"t.id/part_0_1", "I32", {6}, std::string(24, '\0')}}));
  auto listing = discover_checkpoint(source_.path());
  ASSERT_TRUE(listing);
  listing_ = listing.value();
  auto files = reshard(2);
  ASSERT_FALSE(files);
  EXPECT_EQ(files.error().code, ExitCode::kBadInput);
  EXPECT_NE(files.error().describe().find("id tensor \"t.id/part_0_1\" is not int64 [N]"), std::string::npos);
}

}  // namespace
}  // namespace recis_convert

namespace recis_convert {
namespace {

TEST(PlacementIndexTest, EachRowTakesItsTargetsPlacementAndAnUnplacedTargetIsNamedByItsRow) {
  PlacementIndex index(8);
  index.set({Placement{2, 0, 0}, Placement{5, 0, 0}, Placement{7, 0, 0}});
  const std::vector<uint32_t> targets{5, 2, 7, 7};
  std::vector<uint32_t> got(4);
  EXPECT_FALSE(index.look_up(targets.data(), 4, got.data()));
  EXPECT_EQ(got, (std::vector<uint32_t>{1, 0, 2, 2}));
  index.set({Placement{3, 0, 0}});  // the next tensor's: the previous placements are gone
  auto unplaced = index.look_up(targets.data(), 4, got.data());
  ASSERT_TRUE(unplaced);
  EXPECT_EQ(*unplaced, 0u);
  const Error error = unplaced_row("/ckpt/f.safetensors", "tensor \"t.id/part_0_1\"", 41);
  EXPECT_EQ(error.code, ExitCode::kBadInput);
  EXPECT_NE(error.describe().find("row 41 has an id the count pass did not see"), std::string::npos);
}

}  // namespace
}  // namespace recis_convert
