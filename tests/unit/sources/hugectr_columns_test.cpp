#include "recis_convert/sources/hugectr_columns.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <string>
#include <vector>

#include "test_files.h"

namespace recis_convert {
namespace {

// A directory table of 9 rows: key 100 + r, vectors of 3 floats r * 10 + c, slot ids r % 2.
HugectrSparseTable write_table(const testing::TempDir& dir) {
  const std::string path = dir.file("t.model");
  ::mkdir(path.c_str(), 0777);
  std::vector<int64_t> keys;
  std::vector<float> vectors;
  std::vector<uint64_t> slots;
  for (uint64_t r = 0; r < 9; ++r) {
    keys.push_back(static_cast<int64_t>(100 + r));
    for (uint64_t c = 0; c < 3; ++c) vectors.push_back(static_cast<float>(r * 10 + c));
    slots.push_back(r % 2);
  }
  testing::write_file(path + "/key", testing::raw_bytes(keys));
  testing::write_file(path + "/emb_vector", testing::raw_bytes(vectors));
  testing::write_file(path + "/slot_id", testing::raw_bytes(slots));
  auto table = describe_hugectr_sparse(path, 3, {});
  EXPECT_TRUE(table) << table.error().describe();
  return table.value();
}

TEST(HugectrColumnsTest, KeysVectorsAndSlotIdsAreTheColumnsOfARowRange) {
  testing::TempDir dir;
  HugectrColumns columns(write_table(dir));
  ASSERT_EQ(columns.columns(), 3u);
  EXPECT_EQ(columns.row_bytes(HugectrColumns::kKeys), 8u);
  EXPECT_EQ(columns.row_bytes(HugectrColumns::kVectors), 12u);
  EXPECT_EQ(columns.row_bytes(HugectrColumns::kSlotIds), 8u);
  EXPECT_EQ(HugectrColumns::column_of("id"), HugectrColumns::kKeys);
  EXPECT_EQ(HugectrColumns::column_of("embedding"), HugectrColumns::kVectors);
  EXPECT_EQ(HugectrColumns::column_of("slot_id"), HugectrColumns::kSlotIds);
  std::vector<int64_t> keys(4);
  std::vector<float> vectors(4 * 3);
  std::vector<uint64_t> slots(4);
  unsigned char* into[] = {reinterpret_cast<unsigned char*>(keys.data()), reinterpret_cast<unsigned char*>(vectors.data()),
                           reinterpret_cast<unsigned char*>(slots.data())};
  ASSERT_TRUE(columns.read(3, 4, nullptr, into));
  EXPECT_EQ(keys, (std::vector<int64_t>{103, 104, 105, 106}));
  EXPECT_EQ(vectors[0], 30.f);
  EXPECT_EQ(vectors[11], 62.f);
  EXPECT_EQ(slots, (std::vector<uint64_t>{1, 0, 1, 0}));
  const std::vector<uint32_t> kept{1, 3};  // HugeCTR's arrays are read whole, then the kept rows moved forward
  ASSERT_TRUE(columns.read(3, 4, &kept, into));
  EXPECT_EQ(keys[0], 104);
  EXPECT_EQ(keys[1], 106);
  EXPECT_EQ(vectors[3], 60.f);
  EXPECT_EQ(slots[1], 0u);
}

}  // namespace
}  // namespace recis_convert
