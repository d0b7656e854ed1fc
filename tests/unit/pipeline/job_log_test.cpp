#include "recis_convert/pipeline/job_log.h"

#include <gtest/gtest.h>

namespace recis_convert {
namespace {

TEST(JobLogTest, OnlyFilesWhoseOutputFollowsFromTheirHeaderAreSplit) {
  SourceDescription recis;
  JobOptions o;
  EXPECT_TRUE(splits_files(o, recis));
  o.filter_optimizer = true;
  o.embedding_dtypes.all = ServingDType::kInt8;
  EXPECT_TRUE(splits_files(o, recis));  // rewritten rows: still laid out from the header
  JobOptions reshard;
  reshard.reshard = 3;
  EXPECT_FALSE(splits_files(reshard, recis));  // rows routed elsewhere
  JobOptions evict;
  evict.eviction.l2_below = 0.5f;
  EXPECT_FALSE(splits_files(evict, recis));  // kept rows counted per part first
  JobOptions hdf5;
  hdf5.format = ExportFormat::kHdf5;
  EXPECT_FALSE(splits_files(hdf5, recis));  // model.h5 spreads its own pieces
  SourceDescription hugectr;
  hugectr.kind = SourceKind::kHugectr;
  hugectr.row_tables.emplace();
  EXPECT_FALSE(splits_files(JobOptions{}, hugectr));
}

}  // namespace
}  // namespace recis_convert
