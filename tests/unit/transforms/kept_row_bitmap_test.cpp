#include "recis_convert/transforms/kept_row_bitmap.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_files.h"

namespace recis_convert {
namespace {

std::vector<unsigned char> pattern(uint64_t rows) {
  std::vector<unsigned char> keep(rows);
  for (uint64_t i = 0; i < rows; ++i) keep[i] = (i * 2654435761u) % 7 < 2 ? 1 : 0;
  return keep;
}

TEST(KeptRowBitmapTest, AppendsInUnevenPiecesAndReadsAnyRange) {
  testing::TempDir dir;
  const uint64_t rows = (uint64_t{1} << 23) + 13;  // more than one flush of 1 MiB of bits, and a partial last byte
  const auto keep = pattern(rows);
  auto writer = KeptRowBitmapWriter::create(dir.file("bits"));
  ASSERT_TRUE(writer) << writer.error().describe();
  for (uint64_t first = 0, n = 1; first < rows; first += n, n = n * 3 + 5) {
    n = std::min(n, rows - first);
    ASSERT_TRUE(writer.value().append(keep.data() + first, n));
  }
  ASSERT_TRUE(writer.value().finish());
  EXPECT_EQ(testing::read_file(dir.file("bits")).size(), (rows + 7) / 8);

  auto reader = KeptRowBitmapReader::open(dir.file("bits"), rows);
  ASSERT_TRUE(reader) << reader.error().describe();
  for (auto [first, n] : std::vector<std::pair<uint64_t, uint64_t>>{{0, 1}, {3, 29}, {8, 8}, {1000001, 77777}, {rows - 5, 5}}) {
    std::vector<unsigned char> got(n, 9);
    auto kept = reader.value().read(first, n, got.data());
    ASSERT_TRUE(kept) << kept.error().describe();
    uint64_t expected = 0;
    for (uint64_t i = 0; i < n; ++i) {
      ASSERT_EQ(got[i], keep[first + i]) << "row " << first + i;
      expected += keep[first + i];
    }
    EXPECT_EQ(kept.value(), expected);
  }
}

TEST(KeptRowBitmapTest, RefusesAFileOfTheWrongSizeAndRowsBeyondIt) {
  testing::TempDir dir;
  testing::write_file(dir.file("bits"), std::string(3, '\xff'));
  auto wrong = KeptRowBitmapReader::open(dir.file("bits"), 25);  // 25 rows need 4 bytes
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, ExitCode::kOutput);
  EXPECT_NE(wrong.error().describe().find("wrong size"), std::string::npos);
  auto right = KeptRowBitmapReader::open(dir.file("bits"), 24);
  ASSERT_TRUE(right);
  std::vector<unsigned char> keep(8);
  EXPECT_FALSE(right.value().read(20, 8, keep.data()));
  auto all = right.value().read(16, 8, keep.data());
  ASSERT_TRUE(all);
  EXPECT_EQ(all.value(), 8u);
}

TEST(KeptRowBitmapTest, NeverOverwritesAFile) {
  testing::TempDir dir;
  testing::write_file(dir.file("bits"), "x");
  auto writer = KeptRowBitmapWriter::create(dir.file("bits"));
  ASSERT_FALSE(writer);
  EXPECT_EQ(writer.error().code, ExitCode::kOutput);
}

TEST(KeptRowBitmapTest, LivesInTheStagingDirectoryOnly) {
  EXPECT_EQ(kept_row_bitmap_dir(""), "");
  EXPECT_EQ(kept_row_bitmap_dir("/x/.e.recis-staging.h.1"), "/x/.e.recis-staging.h.1/.kept-rows");
}

}  // namespace
}  // namespace recis_convert
