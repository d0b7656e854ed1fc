#include "recis_convert/formats/hugectr_sparse.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "test_files.h"

namespace recis_convert {
namespace {


// A v3.1+ table directory of `rows` keys with vec floats each (value = row * 10 + column).
std::string write_directory(const testing::TempDir& dir, const std::string& name, uint64_t rows, uint64_t vec,
                            bool slots) {
  const std::string path = dir.file(name);
  ::mkdir(path.c_str(), 0777);
  std::vector<int64_t> keys;
  std::vector<float> vectors;
  std::vector<uint64_t> slot_ids;
  for (uint64_t r = 0; r < rows; ++r) {
    keys.push_back(static_cast<int64_t>(r * 1000003) - 5);
    for (uint64_t c = 0; c < vec; ++c) vectors.push_back(static_cast<float>(r * 10 + c));
    slot_ids.push_back(r % 3);
  }
  testing::write_file(path + "/key", testing::raw_bytes(keys));
  testing::write_file(path + "/emb_vector", testing::raw_bytes(vectors));
  if (slots) testing::write_file(path + "/slot_id", testing::raw_bytes(slot_ids));
  return path;
}

TEST(HugectrSparseTest, DirectoryFormatIsDescribedAndRead) {
  testing::TempDir dir;
  const std::string path = write_directory(dir, "t0.model", 7, 4, true);
  auto table = describe_hugectr_sparse(path, 4, {});
  ASSERT_TRUE(table) << table.error().describe();
  EXPECT_EQ(table.value().format, HugectrSparseFormat::kDirectory);
  EXPECT_EQ(table.value().rows, 7u);
  EXPECT_TRUE(table.value().has_slot_id);
  HugectrRowReader reader(table.value());
  HugectrRows rows;
  ASSERT_TRUE(reader.read(2, 3, rows));
  EXPECT_EQ(rows.keys, (std::vector<int64_t>{2 * 1000003 - 5, 3 * 1000003 - 5, 4 * 1000003 - 5}));
  EXPECT_EQ(rows.vectors[0], 20.0f);
  EXPECT_EQ(rows.vectors[11], 43.0f);
  EXPECT_EQ(rows.slot_ids, (std::vector<uint64_t>{2, 0, 1}));
  ASSERT_TRUE(reader.read(7, 0, rows));
  EXPECT_TRUE(rows.keys.empty());
  EXPECT_FALSE(reader.read(5, 3, rows));  // past the end: a bug in the caller, never silent
}

TEST(HugectrSparseTest, DirectorySizeMismatchesStateExpectedAndActualBytes) {
  testing::TempDir dir;
  const std::string path = write_directory(dir, "t.model", 5, 2, true);
  // one float too many in emb_vector
  testing::write_file(path + "/emb_vector", testing::read_file(path + "/emb_vector") + std::string(4, '\0'));
  auto table = describe_hugectr_sparse(path, 2, {});
  ASSERT_FALSE(table);
  EXPECT_EQ(table.error().code, ExitCode::kBadInput);
  EXPECT_EQ(table.error().file, path + "/emb_vector");
  EXPECT_NE(table.error().message.find("44 bytes, expected 5 keys x 2 floats = 40 bytes"), std::string::npos)
      << table.error().message;
  // the wrong vec size from the graph is the same mismatch
  write_directory(dir, "t.model", 5, 2, true);
  EXPECT_FALSE(describe_hugectr_sparse(path, 3, {}));
  // a key file that is not whole int64s
  testing::write_file(path + "/key", std::string(41, '\0'));
  auto keys = describe_hugectr_sparse(path, 2, {});
  ASSERT_FALSE(keys);
  EXPECT_EQ(keys.error().file, path + "/key");
  // slot ids for fewer keys
  write_directory(dir, "t.model", 5, 2, true);
  testing::write_file(path + "/slot_id", std::string(32, '\0'));
  auto slots = describe_hugectr_sparse(path, 2, {});
  ASSERT_FALSE(slots);
  EXPECT_NE(slots.error().message.find("32 bytes, expected 5 slot ids = 40 bytes"), std::string::npos);
  // missing emb_vector
  ::unlink((path + "/emb_vector").c_str());
  EXPECT_FALSE(describe_hugectr_sparse(path, 2, {}));
  EXPECT_FALSE(describe_hugectr_sparse(dir.file("nope"), 2, {}));
  EXPECT_FALSE(describe_hugectr_sparse(path, 0, {}));
}

TEST(HugectrSparseTest, LegacyRecordsWithFourByteKeysAndSlotIds) {
  testing::TempDir dir;
  std::string bytes;
  for (uint32_t r = 0; r < 3; ++r) {
    const uint32_t key = 0xFFFFFFF0u + r;  // unsigned: must not turn negative
    const uint64_t slot = r + 10;
    const float vec[2] = {static_cast<float>(r), -static_cast<float>(r)};
    bytes.append(reinterpret_cast<const char*>(&key), 4);
    bytes.append(reinterpret_cast<const char*>(&slot), 8);
    bytes.append(reinterpret_cast<const char*>(vec), 8);
  }
  testing::write_file(dir.file("legacy.model"), bytes);
  auto table = describe_hugectr_sparse(dir.file("legacy.model"), 2, {4, true});
  ASSERT_TRUE(table) << table.error().describe();
  EXPECT_EQ(table.value().format, HugectrSparseFormat::kLegacyFile);
  EXPECT_EQ(table.value().record_bytes, 20u);
  EXPECT_EQ(table.value().rows, 3u);
  HugectrRowReader reader(table.value());
  HugectrRows rows;
  ASSERT_TRUE(reader.read(1, 2, rows));
  EXPECT_EQ(rows.keys, (std::vector<int64_t>{0xFFFFFFF1ll, 0xFFFFFFF2ll}));
  EXPECT_EQ(rows.slot_ids, (std::vector<uint64_t>{11, 12}));
  EXPECT_EQ(rows.vectors, (std::vector<float>{1, -1, 2, -2}));

  // a partial record is an error that says how much is left over
  testing::write_file(dir.file("legacy.model"), bytes + "xyz");
  auto partial = describe_hugectr_sparse(dir.file("legacy.model"), 2, {4, true});
  ASSERT_FALSE(partial);
  EXPECT_NE(partial.error().message.find("3 bytes left over"), std::string::npos) << partial.error().message;
  // the same bytes read as 8-byte distributed records (16 bytes each) do not fit either
  EXPECT_FALSE(describe_hugectr_sparse(dir.file("legacy.model"), 2, {8, false}));
  EXPECT_FALSE(describe_hugectr_sparse(dir.file("legacy.model"), 2, {5, false}));
}

TEST(HugectrSparseTest, RowsAreSplitIntoContiguousRanges) {
  for (uint64_t rows : {0ull, 1ull, 7ull, 1000ull}) {
    for (int size : {1, 2, 3, 4}) {
      uint64_t next = 0;
      for (int rank = 0; rank < size; ++rank) {
        const RowRange range = rows_of_rank(rows, size, rank);
        EXPECT_EQ(range.first, next);
        EXPECT_LE(range.count, rows / static_cast<uint64_t>(size) + 1);
        next += range.count;
      }
      EXPECT_EQ(next, rows);
    }
  }
  EXPECT_EQ(rows_of_rank(7, 3, 0).count, 3u);
  EXPECT_EQ(rows_of_rank(7, 3, 2).first, 5u);
}

}  // namespace
}  // namespace recis_convert
