#include "recis_convert/pipeline/rank_reports.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "recis_convert/common/checksum.h"

namespace recis_convert {
namespace {

FileResult written(const std::string& name, uint64_t source_bytes, uint64_t output_bytes) {
  FileResult f;
  f.name = name;
  f.source_bytes = source_bytes;
  f.written = true;
  f.output_bytes = output_bytes;
  return f;
}

TEST(RankReportsTest, RankZeroIsSentNoBlocksTheOthersThoseOfTheFilesTheyRead) {
  const WorkPlan work = plan_work({100, 100, 100}, 2, Balance::kRoundRobin, 0);
  EXPECT_EQ(files_shared_with(work, 0), (std::vector<bool>{false, false, false}));
  EXPECT_EQ(files_shared_with(work, 1), work.files_read_by(1));
}

TEST(RankReportsTest, EveryRanksResultsAreCollectedWithTheirOwnerAndAnErrorIsSaidOnce) {
  const WorkPlan work = plan_work({10, 20}, 2, Balance::kRoundRobin, 0);
  const JobOptions options;
  RunReport report(options, "host", 2);
  std::vector<RankReport> reports(2);
  reports[0].results = {written("a.safetensors", 10, 8)};
  reports[1].results = {written("b.safetensors", 20, 16)};  // (a real run packs the other ranks' results)
  const Error interrupted{ExitCode::kInterrupted, "", "interrupted by SIGTERM"};
  reports[0].error = interrupted;
  reports[1].error = interrupted;
  std::vector<PackedFileResults> packed(2);
  auto gathered = collect_reports(reports, packed, report, BlockCatalog(), work, 0, false);
  ASSERT_TRUE(gathered) << gathered.error().describe();
  ASSERT_EQ(gathered.value().files.size(), 2u);
  EXPECT_EQ(gathered.value().owner.at("a.safetensors"), 0);
  EXPECT_EQ(gathered.value().owner.at("b.safetensors"), 1);
  const auto record = nlohmann::json::parse(report.to_json(ExitCode::kInterrupted, false));
  ASSERT_EQ(record["errors"].size(), 1u);  // every rank reports the same interruption: said once
  EXPECT_NE(record["errors"][0].get<std::string>().find("nothing was published"), std::string::npos);
}

TEST(RankReportsTest, ASplitFilesChecksumIsJoinedFromItsPiecesAndAMissingPieceIsAnError) {
  const uint64_t piece_bytes = 4;
  const WorkPlan work = plan_work({12}, 1, Balance::kRoundRobin, 0);
  const JobOptions options;
  RunReport report(options, "host", 1);
  const std::vector<uint64_t> sums{1, 2, 3};
  auto collect = [&](std::vector<PieceResult> pieces) {
    std::vector<RankReport> reports(1);
    reports[0].results = {written("big.safetensors", 12, 12)};
    reports[0].pieces = std::move(pieces);
    std::vector<PackedFileResults> packed(1);
    return collect_reports(reports, packed, report, BlockCatalog(), work, piece_bytes, true);
  };
  auto joined = collect({PieceResult{"big.safetensors", 1, 2, 2, {3}, 4, 4},
                         PieceResult{"big.safetensors", 0, 2, 0, {1, 2}, 8, 8}});
  ASSERT_TRUE(joined) << joined.error().describe();
  EXPECT_EQ(joined.value().files[0].checksum, PieceChecksum::combine(sums));
  auto missing = collect({PieceResult{"big.safetensors", 0, 2, 0, {1, 2}, 8, 8}});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ExitCode::kInternal);
}

}  // namespace
}  // namespace recis_convert
