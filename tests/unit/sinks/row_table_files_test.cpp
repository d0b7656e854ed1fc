#include "recis_convert/sinks/row_table_files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <string>
#include <vector>

#include "message_round_trip.h"
#include "recis_convert/mpi/comm.h"
#include "recis_convert/mpi/job_messages.h"
#include "recis_convert/plan/slices.h"
#include "recis_convert/sinks/shared_file_checksums.h"
#include "recis_convert/sources/hugectr_export.h"
#include "test_files.h"

namespace recis_convert {
namespace {

TEST(RowTableFilesTest, RanksWriteTheirRowRangesIntoOneRecisLayoutFile) {
  testing::TempDir dir;
  // one localized table of 3 slots x 2 floats; 11 rows
  std::vector<int64_t> keys;
  std::vector<float> vectors;
  std::vector<uint64_t> slots;
  for (int r = 0; r < 11; ++r) {
    keys.push_back(100 + r);
    vectors.push_back(static_cast<float>(r));
    vectors.push_back(-static_cast<float>(r));
    slots.push_back(static_cast<uint64_t>(r % 3));
  }
  const std::string table = testing::write_localized_hugectr_model(dir.path(), keys);

  JobOptions o;
  o.source = SourceKind::kHugectr;
  o.graph = dir.file("g.json");
  o.sparse = {table};
  auto plan = describe_hugectr_model(o, RowTransformChain());
  ASSERT_TRUE(plan) << plan.error().describe();
  ASSERT_EQ(plan.value().tables.size(), 1u);
  const RowTable& t = plan.value().tables[0];
  EXPECT_EQ(t.file, "model-000000-of-000001.safetensors");
  ASSERT_EQ(t.tensors.size(), 3u);
  EXPECT_EQ(t.tensors[2].name, "user.slot_id/part_0_1");
  const CheckpointListing listing = row_tables_listing(plan.value());
  EXPECT_EQ(listing.blocks.find("user.embedding/part_0_1")->logical, "user@embedding^00000@65536@65536");
  auto again = testing::round_trip(plan.value());
  ASSERT_TRUE(again);
  ASSERT_TRUE(lay_out_row_tables(again.value(), RowTransformChain()));
  EXPECT_EQ(again.value().tables[0].preamble, t.preamble);

  const std::string staging = dir.file("staging");
  ::mkdir(staging.c_str(), 0777);
  // three ranks: each counts its range (every row stays: nothing is read), rank 0 places them, each writes its own
  o.buffer_mib = 1;
  o.fsync = false;
  std::vector<RankRowRangeCounts> counts;
  for (int rank = 0; rank < 3; ++rank) counts.push_back(count_row_table_rows(o, again.value(), {{0, rows_of_rank(11, 3, rank)}}));
  auto placed = place_row_ranges(o, plan.value(), counts);
  ASSERT_TRUE(placed) << placed.error().describe();
  ASSERT_TRUE(create_row_table_files(plan.value(), staging, false));
  const Log log(0, true, false);
  for (int rank = 2; rank >= 0; --rank) {  // in any order
    RowTablePlan mine;
    mine.mine = placed.value().ranks[static_cast<size_t>(rank)];
    auto written = write_row_table_ranges(o, again.value(), mine, RowTransformChain(), staging, rank, 3, nullptr, log, {});
    ASSERT_TRUE(written) << written.error().describe();
  }
  SerialComm comm;
  auto digests = checksum_shared_files(comm, {t.file}, staging, 16);  // pieces of 16 bytes
  ASSERT_TRUE(digests);
  EXPECT_EQ(digests.value().at(t.file).checksum, Checksum::of_file(staging + "/" + t.file, ExitCode::kOutput, 16).value().checksum);
  auto results = row_table_file_results(plan.value(), staging, digests.value());
  ASSERT_TRUE(results) << results.error().describe();
  const std::string file = testing::read_file(staging + "/" + t.file);
  EXPECT_EQ(file, t.preamble + testing::raw_bytes(keys) + testing::raw_bytes(vectors) + testing::raw_bytes(slots));
  EXPECT_EQ(results.value()[0].output_bytes, file.size());

  o.sparse = {};  // one model per embedding
  EXPECT_EQ(describe_hugectr_model(o, RowTransformChain()).error().code, ExitCode::kUsage);
  o.sparse = {table};
  o.table_names = {"bad/name"};
  EXPECT_EQ(describe_hugectr_model(o, RowTransformChain()).error().code, ExitCode::kUsage);
}

}  // namespace
}  // namespace recis_convert
