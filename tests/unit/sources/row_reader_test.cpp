#include "recis_convert/sources/row_reader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

namespace recis_convert {
namespace {

// `columns` columns of `bytes`-byte rows, row r of column c holding the byte base + c * 100 + r.
class CountingReader final : public RowReader {
 public:
  CountingReader(size_t columns, uint64_t bytes, unsigned char base) : columns_(columns), bytes_(bytes), base_(base) {}
  size_t columns() const override { return columns_; }
  uint64_t row_bytes(size_t) const override { return bytes_; }
  Status read(uint64_t first, uint64_t n, const std::vector<uint32_t>* kept, unsigned char* const* into) override {
    for (size_t c = 0; c < columns_; ++c) {
      const uint64_t rows = kept ? kept->size() : n;
      for (uint64_t i = 0; i < rows; ++i) {
        const uint64_t r = first + (kept ? (*kept)[i] : i);
        std::memset(into[c] + i * bytes_, static_cast<int>(base_ + c * 100 + r), bytes_);
      }
    }
    return Ok{};
  }

 private:
  size_t columns_;
  uint64_t bytes_;
  unsigned char base_;
};

TEST(SideBySideTest, GivesEveryReadersColumnsInOrderForTheSameRows) {
  SideBySide both({std::make_shared<CountingReader>(2, 3, 0), std::make_shared<CountingReader>(1, 8, 50)});
  ASSERT_EQ(both.columns(), 3u);
  EXPECT_EQ(both.row_bytes(0), 3u);
  EXPECT_EQ(both.row_bytes(1), 3u);
  EXPECT_EQ(both.row_bytes(2), 8u);
  std::vector<unsigned char> a(2 * 3), b(2 * 3), c(2 * 8);
  unsigned char* into[] = {a.data(), b.data(), c.data()};
  const std::vector<uint32_t> kept{1, 4};
  ASSERT_TRUE(both.read(10, 5, &kept, into));
  EXPECT_EQ(a, (std::vector<unsigned char>{11, 11, 11, 14, 14, 14}));
  EXPECT_EQ(b, (std::vector<unsigned char>{111, 111, 111, 114, 114, 114}));
  EXPECT_EQ(c[0], 61);  // the second reader's column 0, rows 11 and 14
  EXPECT_EQ(c[8], 64);
}

}  // namespace
}  // namespace recis_convert
