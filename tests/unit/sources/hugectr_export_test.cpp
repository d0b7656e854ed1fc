#include "message_round_trip.h"
#include "recis_convert/mpi/job_messages.h"
#include "recis_convert/sources/hugectr_export.h"

#include "recis_convert/mpi/comm.h"
#include "recis_convert/sinks/shared_file_checksums.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <string>
#include <vector>

#include "test_files.h"

namespace recis_convert {
namespace {


TEST(HugectrExportTest, LegacyTablesUnpackIntoPlainArrays) {
  testing::TempDir dir;
  std::string records;
  for (int r = 0; r < 9; ++r) {
    const int64_t key = 7 * r;
    const uint64_t slot = static_cast<uint64_t>(r % 2);
    const float vec[3] = {static_cast<float>(r), 0.5f, -static_cast<float>(r)};
    records.append(reinterpret_cast<const char*>(&key), 8);
    records.append(reinterpret_cast<const char*>(&slot), 8);
    records.append(reinterpret_cast<const char*>(vec), 12);
  }
  testing::write_file(dir.file("legacy.model"), records);
  auto table = describe_hugectr_sparse(dir.file("legacy.model"), 3, {8, true});
  ASSERT_TRUE(table) << table.error().describe();
  ASSERT_TRUE(unpack_legacy_table(table.value(), dir.file("unpacked"), 50));  // two records per piece
  auto arrays = describe_hugectr_sparse(dir.file("unpacked"), 3, {});
  ASSERT_TRUE(arrays) << arrays.error().describe();
  EXPECT_EQ(arrays.value().rows, 9u);
  EXPECT_TRUE(arrays.value().has_slot_id);
  HugectrRows a, b;
  ASSERT_TRUE(HugectrRowReader(table.value()).read(0, 9, a));
  ASSERT_TRUE(HugectrRowReader(arrays.value()).read(0, 9, b));
  EXPECT_EQ(a.keys, b.keys);
  EXPECT_EQ(a.vectors, b.vectors);
  EXPECT_EQ(a.slot_ids, b.slot_ids);
}

}  // namespace
}  // namespace recis_convert
