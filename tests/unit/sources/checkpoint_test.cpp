#include "message_round_trip.h"
#include "recis_convert/mpi/job_messages.h"
#include "recis_convert/sources/checkpoint.h"

#include <gtest/gtest.h>

#include "block_catalogs.h"
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <set>

#include "test_files.h"

namespace recis_convert {
namespace {

using testing::TempDir;
using testing::write_file;

TEST(CheckpointTest, LatestIdIsTheLastNonEmptyLine) {
  auto id = latest_checkpoint_id("ckpt_100\nckpt_200\n  \n", "checkpoint");
  ASSERT_TRUE(id);
  EXPECT_EQ(id.value(), "ckpt_200");
  EXPECT_EQ(latest_checkpoint_id("  ckpt_7 \r\n", "c").value(), "ckpt_7");
}

TEST(CheckpointTest, LatestIdRejectsEmptyFilesAndPaths) {
  EXPECT_FALSE(latest_checkpoint_id("\n\n", "c"));
  EXPECT_FALSE(latest_checkpoint_id("../elsewhere\n", "c"));
  EXPECT_FALSE(latest_checkpoint_id("..\n", "c"));
}

TEST(CheckpointTest, LatestIdMustBeUtf8) {
  auto id = latest_checkpoint_id("ckpt_\xFF" "1\n", "c");
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().message, "names \"ckpt_\xEF\xBF\xBD" "1\", which is not valid UTF-8");
}

// index + tensorkey.json of one file holding the given tensorkey entries (key -> logical); every key is indexed
// unless it is in `unindexed`.
Result<CheckpointBlocks> blocks_of(const std::vector<std::pair<std::string, std::string>>& entries,
                                   const std::set<std::string>& unindexed = {}) {
  nlohmann::json index = {{"file_index", {{"model-0.safetensors", 0}}}, {"block_index", nlohmann::json::object()}};
  nlohmann::json tensorkey = nlohmann::json::object();
  for (const auto& [key, logical] : entries) {
    if (!unindexed.count(key)) index["block_index"][key] = 0;
    tensorkey[key] = logical;
  }
  return parse_checkpoint_blocks(index.dump(), "index", tensorkey.dump(), "tensorkey.json");
}

std::string slice_problem(const std::vector<std::pair<std::string, std::string>>& entries,
                          const std::set<std::string>& unindexed = {}) {
  auto blocks = blocks_of(entries, unindexed);
  if (blocks) return "OK";
  EXPECT_EQ(blocks.error().code, ExitCode::kBadInput);
  EXPECT_EQ(blocks.error().file, "tensorkey.json");
  return blocks.error().message;
}

TEST(CheckpointTest, TensorkeySlicesThatTileTheRangeAreAccepted) {
  EXPECT_EQ(slice_problem({{"u.id/part_0_2", "u@id^00000@32768@65536"},
                           {"u.id/part_1_2", "u@id^32768@65536@65536"},
                           {"u.embedding/part_0_1", "u@embedding^00000@65536@65536"},
                           {"a.b.id/part_0_1", "a.b@id^00000@65536@65536"}}),
            "OK");
}

TEST(CheckpointTest, LyingTensorkeySlicesAreRefusedNamingTableAndSlice) {
  EXPECT_EQ(slice_problem({{"u.id/part_0_2", "u@id^00000@40000@65536"}, {"u.id/part_1_2", "u@id^32768@65536@65536"}}),
            "table \"u\" slot \"id\": the slices of \"u.id/part_0_2\" and \"u.id/part_1_2\" overlap at id % 65536 = "
            "32768");
  EXPECT_EQ(slice_problem({{"u.id/part_0_2", "u@id^00000@30000@65536"}, {"u.id/part_1_2", "u@id^32768@65536@65536"}}),
            "table \"u\" slot \"id\": no slice covers ids % 65536 in [30000, 32768) (before \"u.id/part_1_2\")");
  EXPECT_EQ(slice_problem({{"u.id/part_0_2", "u@id^00000@32768@65536"}}),
            "table \"u\" slot \"id\": no slice covers ids % 65536 in [32768, 65536) (after \"u.id/part_0_2\")");
  EXPECT_EQ(slice_problem({{"u.id/part_1_2", "u@id^32768@65536@65536"}}),
            "table \"u\" slot \"id\": no slice covers ids % 65536 in [0, 32768) (before \"u.id/part_1_2\")");
  EXPECT_EQ(slice_problem({{"u.id/part_0_1", "u@id^00000@65536@65536"}, {"u.id/part_1_2", "u@id^00000@65536@65536"}}),
            "table \"u\" slot \"id\": the slices of \"u.id/part_0_1\" and \"u.id/part_1_2\" overlap at id % 65536 = 0");
  // a size other than 65536, a slice that runs backwards, an empty one
  EXPECT_EQ(slice_problem({{"u.id/part_0_1", "u@id^00000@32768@32768"}}),
            "entry \"u.id/part_0_1\": \"u@id^00000@32768@32768\" has slice \"00000@32768@32768\"; RecIS writes "
            "<begin>@<end>@65536 with begin < end");
  EXPECT_NE(slice_problem({{"u.id/part_0_1", "u@id^65536@00000@65536"}}).find("RecIS writes"), std::string::npos);
  EXPECT_NE(slice_problem({{"u.id/part_0_1", "u@id^00000@00000@65536"}}).find("RecIS writes"), std::string::npos);
}

TEST(CheckpointTest, TensorkeyEntryMustNameTheSlotOfItsKeyAndAnIndexedBlock) {
  EXPECT_EQ(slice_problem({{"u.embedding/part_0_1", "u@step_filter^00000@65536@65536"}}),
            "entry \"u.embedding/part_0_1\": \"u@step_filter^00000@65536@65536\" names table \"u\" slot "
            "\"step_filter\", but the key is not that slot's part key \"u.step_filter/part_<r>_<R>\"");
  EXPECT_NE(slice_problem({{"v.id/part_0_1", "u@id^00000@65536@65536"}}).find("is not that slot's part key"),
            std::string::npos);
  EXPECT_NE(slice_problem({{"u.id/part_x", "u@id^00000@65536@65536"}}).find("is not that slot's part key"),
            std::string::npos);
  EXPECT_EQ(slice_problem({{"u.id/part_0_1", "u@id^00000@65536@65536"}}, {"u.id/part_0_1"}),
            "entry \"u.id/part_0_1\": \"u@id^00000@65536@65536\" has no block in index");
}

TEST(CheckpointTest, ListingUnchangedUntilAFileIsRewritten) {
  TempDir dir;
  testing::write_small_checkpoint(dir.path());
  auto listing = discover_checkpoint(dir.path());
  ASSERT_TRUE(listing) << listing.error().describe();
  EXPECT_TRUE(check_listing_unchanged(listing.value()));
  DataFile& first = listing.value().files[0];
  first.mtime_ns -= 1000000000;  // as if it had been discovered a second before its last write
  auto changed = check_listing_unchanged(listing.value());
  ASSERT_FALSE(changed);
  EXPECT_EQ(changed.error().file, dir.file(first.name));
  EXPECT_NE(changed.error().message.find("file changed as we read it"), std::string::npos);
  ::unlink(dir.file(first.name).c_str());
  EXPECT_NE(check_listing_unchanged(listing.value()).error().message.find("it is gone"), std::string::npos);
}

TEST(CheckpointTest, ParsesSparseKeys) {
  auto key = parse_sparse_key("user@sparse_adamw_exp_avg^00000@32768@65536");
  ASSERT_TRUE(key);
  EXPECT_EQ(key->child, "user");
  EXPECT_EQ(key->slot, "sparse_adamw_exp_avg");
  EXPECT_EQ(key->slice, "00000@32768@65536");
  auto at_in_child = parse_sparse_key("a@b@embedding^0@1@2");
  ASSERT_TRUE(at_in_child);
  EXPECT_EQ(at_in_child->child, "a@b");
  EXPECT_FALSE(parse_sparse_key("user@id"));
  EXPECT_FALSE(parse_sparse_key("user@id^1@2"));
  EXPECT_FALSE(parse_sparse_key("userid^0@1@2"));
  EXPECT_FALSE(parse_sparse_key("user@id^0@x@2"));
}

TEST(CheckpointTest, ClassifiesSparseAndDenseKeys) {
  const BlockCatalog tensorkey = testing::catalog_of({{"user.id/part_0_1", 0, "user@id^00000@65536@65536"}});
  auto sparse = classify_key("user.id/part_0_1", tensorkey);
  ASSERT_TRUE(sparse);
  EXPECT_TRUE(sparse->sparse);
  EXPECT_EQ(sparse->sparse_key.slot, "id");
  auto dense = classify_key("sparse_adamw_step^ ", tensorkey);
  ASSERT_TRUE(dense);
  EXPECT_FALSE(dense->sparse);
  EXPECT_EQ(dense->dense_name, "sparse_adamw_step");
  EXPECT_FALSE(classify_key("user.embedding/part_0_1", tensorkey));
  EXPECT_FALSE(classify_key("^ ", tensorkey));
}

TEST(CheckpointTest, DiscoversACompleteCheckpoint) {
  TempDir dir;
  testing::write_small_checkpoint(dir.path());
  auto listing = discover_checkpoint(dir.path());
  ASSERT_TRUE(listing) << listing.error().describe();
  ASSERT_EQ(listing.value().files.size(), 2u);
  EXPECT_EQ(listing.value().files[0].name, "model-000000-of-000002.safetensors");
  EXPECT_EQ(listing.value().files[1].size, testing::read_file(dir.file("model-000001-of-000002.safetensors")).size());
  const auto& blocks = listing.value().blocks;
  ASSERT_TRUE(blocks.find("sparse_adamw_step^ "));
  EXPECT_EQ(blocks.find("sparse_adamw_step^ ")->file, 0u);
  EXPECT_TRUE(blocks.find("sparse_adamw_step^ ")->logical.empty());
  size_t sparse = 0;
  for (size_t i = 0; i < blocks.size(); ++i) sparse += blocks[i].logical.empty() ? 0 : 1;
  EXPECT_EQ(sparse, 3u);
}

TEST(CheckpointTest, FollowsTheCheckpointFileOfAnOutputDirectory) {
  TempDir dir;
  ::mkdir(dir.file("ckpt_200").c_str(), 0755);
  testing::write_small_checkpoint(dir.file("ckpt_200"));
  write_file(dir.file("checkpoint"), "ckpt_100\nckpt_200\n");
  auto listing = discover_checkpoint(dir.path());
  ASSERT_TRUE(listing) << listing.error().describe();
  EXPECT_EQ(listing.value().ckpt_id, "ckpt_200");
  EXPECT_EQ(listing.value().ckpt_dir, dir.file("ckpt_200"));
}

TEST(CheckpointTest, CheckpointFileNamingAMissingDirectoryIsBadInput) {
  TempDir dir;
  write_file(dir.file("checkpoint"), "ckpt_300\n");
  auto listing = discover_checkpoint(dir.path());
  ASSERT_FALSE(listing);
  EXPECT_EQ(listing.error().code, ExitCode::kBadInput);
  EXPECT_NE(listing.error().describe().find("ckpt_300"), std::string::npos);
}

TEST(CheckpointTest, MissingIndexIsIncomplete) {
  TempDir dir;
  testing::write_small_checkpoint(dir.path());
  ::unlink(dir.file("index").c_str());
  auto listing = discover_checkpoint(dir.path());
  ASSERT_FALSE(listing);
  EXPECT_EQ(listing.error().file, dir.file("index"));
  EXPECT_NE(listing.error().message.find("incomplete"), std::string::npos);
}

TEST(CheckpointTest, MissingTensorkeyIsIncomplete) {
  TempDir dir;
  testing::write_small_checkpoint(dir.path());
  ::unlink(dir.file("tensorkey.json").c_str());
  auto listing = discover_checkpoint(dir.path());
  ASSERT_FALSE(listing);
  EXPECT_EQ(listing.error().file, dir.file("tensorkey.json"));
}

TEST(CheckpointTest, LeftoverTmpFileIsIncomplete) {
  TempDir dir;
  testing::write_small_checkpoint(dir.path());
  write_file(dir.file("ckpt-0000001-0000000.data.tmp"), "x");
  auto listing = discover_checkpoint(dir.path());
  ASSERT_FALSE(listing);
  EXPECT_NE(listing.error().message.find("did not finish"), std::string::npos);
}

TEST(CheckpointTest, IndexNamingAMissingFileIsBadInput) {
  TempDir dir;
  testing::write_small_checkpoint(dir.path());
  ::unlink(dir.file("model-000001-of-000002.safetensors").c_str());
  auto listing = discover_checkpoint(dir.path());
  ASSERT_FALSE(listing);
  EXPECT_EQ(listing.error().file, dir.file("model-000001-of-000002.safetensors"));
  EXPECT_NE(listing.error().message.find("missing"), std::string::npos);
}

TEST(CheckpointTest, DataFileNotInIndexIsBadInput) {
  TempDir dir;
  testing::write_small_checkpoint(dir.path());
  write_file(dir.file("model-000005-of-000008.safetensors"), "x");
  auto listing = discover_checkpoint(dir.path());
  ASSERT_FALSE(listing);
  EXPECT_NE(listing.error().message.find("not named by"), std::string::npos);
}

TEST(CheckpointTest, IndexWithPathOutsideTheCheckpointIsBadInput) {
  TempDir dir;
  testing::write_small_checkpoint(dir.path());
  write_file(dir.file("index"), R"({"block_index":{},"file_index":{"../x.safetensors":0}})");
  auto listing = discover_checkpoint(dir.path());
  ASSERT_FALSE(listing);
  EXPECT_NE(listing.error().message.find("not a plain file name"), std::string::npos);
}

// The export keeps data file names: one named like a file the export writes itself is bad input, not a clash.
TEST(CheckpointTest, IndexNamingAFileThatIsNotSafetensorsIsBadInput) {
  TempDir dir;
  testing::write_small_checkpoint(dir.path());
  write_file(dir.file("manifest.json"), "{}");
  // the small checkpoint's index with its second data file renamed
  write_file(dir.file("index"), R"({"block_index":{"sparse_adamw_step^ ":0,"user.embedding/part_0_1":1,)"
                                R"("user.id/part_0_1":0,"user.sparse_adamw_exp_avg/part_0_1":1},"file_index":)"
                                R"({"model-000000-of-000002.safetensors":0,"manifest.json":1}})");
  auto listing = discover_checkpoint(dir.path());
  ASSERT_FALSE(listing);
  EXPECT_EQ(listing.error().code, ExitCode::kBadInput);
  EXPECT_EQ(listing.error().message, "file_index names \"manifest.json\", which is not a .safetensors data file");
}

TEST(CheckpointTest, IndexBlockNamingUnknownFileNumberIsBadInput) {
  TempDir dir;
  testing::write_small_checkpoint(dir.path());
  write_file(dir.file("index"), R"({"block_index":{"a":7},"file_index":{}})");
  auto listing = discover_checkpoint(dir.path());
  ASSERT_FALSE(listing);
  EXPECT_NE(listing.error().message.find("names no file"), std::string::npos);
}

TEST(CheckpointTest, MalformedTensorkeyValueIsBadInput) {
  TempDir dir;
  testing::write_small_checkpoint(dir.path());
  write_file(dir.file("tensorkey.json"), R"({"user.id/part_0_1": "user-id"})");
  auto listing = discover_checkpoint(dir.path());
  ASSERT_FALSE(listing);
  EXPECT_EQ(listing.error().file, dir.file("tensorkey.json"));
}

TEST(CheckpointTest, NotADirectoryIsBadInput) {
  auto listing = discover_checkpoint("/nonexistent/ckpt_1");
  ASSERT_FALSE(listing);
  EXPECT_EQ(listing.error().code, ExitCode::kBadInput);
}

TEST(CheckpointTest, ListingSurvivesTheMessageRoundTrip) {
  TempDir dir;
  testing::write_small_checkpoint(dir.path());
  auto listing = discover_checkpoint(dir.path());
  ASSERT_TRUE(listing);
  auto back = testing::round_trip(listing.value());
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value().ckpt_dir, listing.value().ckpt_dir);
  EXPECT_EQ(back.value().files.size(), 2u);
  EXPECT_EQ(back.value().files[1].size, listing.value().files[1].size);
  EXPECT_EQ(back.value().blocks.encode(), listing.value().blocks.encode());
  EXPECT_EQ(back.value().blocks.size(), listing.value().blocks.size());
}

}  // namespace
}  // namespace recis_convert
