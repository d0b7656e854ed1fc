#include "recis_convert/sources/column_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "recis_convert/common/file_io.h"
#include "test_files.h"

namespace recis_convert {
namespace {

// A file of `rows` rows of `width` uint32 each, every value its row number, after a 13-byte preamble.
std::string write_rows(const testing::TempDir& dir, uint64_t rows, uint64_t width) {
  std::vector<uint32_t> values;
  for (uint64_t r = 0; r < rows; ++r) values.insert(values.end(), width, static_cast<uint32_t>(r));
  const std::string path = dir.file("rows.bin");
  testing::write_file(path, std::string(13, 'x') + testing::raw_bytes(values));
  return path;
}

std::vector<uint32_t> first_values(const std::vector<unsigned char>& out, uint64_t rows, uint64_t row_bytes) {
  std::vector<uint32_t> firsts;
  for (uint64_t r = 0; r < rows; ++r) {
    uint32_t v;
    std::memcpy(&v, out.data() + r * row_bytes, 4);
    firsts.push_back(v);
  }
  return firsts;
}

TEST(ColumnReaderTest, ReadsEveryColumnOfARangeOrOnlyItsKeptRows) {
  testing::TempDir dir;
  const std::string path = write_rows(dir, 100, 2);
  auto fd = open_input_file(path);
  ASSERT_TRUE(fd);
  // the same rows seen as two columns: 8-byte rows from the start, 4-byte rows (half rows) from row 50
  ColumnReader reader({FileColumn{fd.value().get(), path, "a", 13, 8}, FileColumn{fd.value().get(), path, "b", 13 + 400, 4}});
  ASSERT_EQ(reader.columns(), 2u);
  std::vector<unsigned char> a(20 * 8), b(20 * 4);
  unsigned char* into[] = {a.data(), b.data()};
  ASSERT_TRUE(reader.read(10, 20, nullptr, into));
  EXPECT_EQ(first_values(a, 20, 8).front(), 10u);
  EXPECT_EQ(first_values(a, 20, 8).back(), 29u);
  const std::vector<uint32_t> kept{0, 1, 5, 19};
  ASSERT_TRUE(reader.read(10, 20, &kept, into));
  EXPECT_EQ(first_values(a, 4, 8), (std::vector<uint32_t>{10, 11, 15, 29}));
  EXPECT_EQ(first_values(b, 4, 4), (std::vector<uint32_t>{55, 55, 57, 64}));  // half rows: row 50 + i / 2
}

TEST(ColumnReaderTest, KeptRowsFarApartAreReadApartAndComeOutInOrder) {
  testing::TempDir dir;
  const uint64_t width = 4096;  // 16 KiB rows: two skipped rows are a 32 KiB gap
  const std::string path = write_rows(dir, 12, width);
  auto fd = open_input_file(path);
  ASSERT_TRUE(fd);
  const std::vector<uint32_t> kept{1, 2, 5, 11};
  std::vector<unsigned char> out(12 * width * 4);
  ASSERT_TRUE(read_kept_rows(fd.value().get(), 13, width * 4, kept, out.data(), path, "rows"));
  EXPECT_EQ(first_values(out, 4, width * 4), (std::vector<uint32_t>{1, 2, 5, 11}));
  uint32_t last;
  std::memcpy(&last, out.data() + 4 * width * 4 - 4, 4);
  EXPECT_EQ(last, 11u);  // the whole row moved, not just its head
}

TEST(ColumnReaderTest, AFileShorterThanItsRowsIsBadInputNamingIt) {
  testing::TempDir dir;
  const std::string path = write_rows(dir, 10, 1);
  auto fd = open_input_file(path);
  ASSERT_TRUE(fd);
  ColumnReader reader({FileColumn{fd.value().get(), path, "tensor \"t\"", 13, 4}});
  std::vector<unsigned char> out(20 * 4);
  unsigned char* into[] = {out.data()};
  auto read = reader.read(0, 20, nullptr, into);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, ExitCode::kBadInput);
  EXPECT_NE(read.error().describe().find(path), std::string::npos);
}

}  // namespace
}  // namespace recis_convert
