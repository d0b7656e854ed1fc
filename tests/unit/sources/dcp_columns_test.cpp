// A DCP table read a row range at a time, against torch's own load of it (tests/fixtures/dcp-torch2.6/truth).
#include "recis_convert/sources/dcp_columns.h"

#include <gtest/gtest.h>

#include <cstring>

#include "recis_convert/sources/dcp_checkpoint.h"
#include "test_files.h"

namespace recis_convert {
namespace {

const std::string kFixture = std::string(RECIS_SOURCE_DIR) + "/tests/fixtures/dcp-torch2.6";

// The fixture's table `name`, as the DCP source names it (sources/dcp_checkpoint.h).
DcpTensor table(const std::string& name) {
  auto location = locate_dcp_checkpoint(kFixture + "/model");
  auto md = location ? read_dcp_metadata(location.value().dcp_dir) : Result<DcpMetadata>(location.error());
  EXPECT_TRUE(md);
  auto described = describe_dcp_checkpoint(location.value(), std::move(md).value());
  EXPECT_TRUE(described);
  for (const auto& t : described.value().tables) {
    if (t.name == name) return t.weight;
  }
  ADD_FAILURE() << name;
  return {};
}

// Rows [first, first + n) of `name` (those at `kept` only, when given) as the reader gives them, and as torch does.
void expect_rows(const std::string& name, uint64_t first, uint64_t n, const std::vector<uint32_t>* kept = nullptr) {
  DcpTableColumns reader(kFixture + "/model", table(name));
  const uint64_t row = reader.row_bytes(DcpTableColumns::kEmbeddings);
  std::vector<unsigned char> ids(n * 8), rows(n * row);
  unsigned char* into[] = {ids.data(), rows.data()};
  auto read = reader.read(first, n, kept, into);
  ASSERT_TRUE(read) << read.error().describe();
  const std::string truth = testing::read_file(kFixture + "/truth/" + name + ".bin");
  const size_t count = kept ? kept->size() : n;
  for (size_t k = 0; k < count; ++k) {
    const uint64_t r = first + (kept ? (*kept)[k] : k);
    int64_t id = 0;
    std::memcpy(&id, ids.data() + k * 8, 8);
    EXPECT_EQ(id, static_cast<int64_t>(r)) << name;
    EXPECT_EQ(std::memcmp(rows.data() + k * row, truth.data() + r * row, row), 0) << name << " row " << r;
  }
}

TEST(DcpTableColumnsTest, RowWiseRangesAcrossChunkBoundaries) {
  expect_rows("user_id", 0, 1000);
  expect_rows("user_id", 330, 10);   // the chunks of ranks 0 and 1
  expect_rows("item_id", 250, 527);  // uneven, to the table's end (where the empty chunk sits)
  expect_rows("zch_user", 66, 3);
}

TEST(DcpTableColumnsTest, ColumnWiseRowsAreTheirChunksSideBySide) {
  expect_rows("cate", 0, 500);
  expect_rows("cate", 7, 100);
}

TEST(DcpTableColumnsTest, TableWiseBf16) { expect_rows("seq_item", 299, 1); }

TEST(DcpTableColumnsTest, KeptRowsComeFirstInOrder) {
  const std::vector<uint32_t> kept = {0, 3, 9, 40};
  expect_rows("cate", 10, 41, &kept);
  expect_rows("user_id", 320, 41, &kept);
}

}  // namespace
}  // namespace recis_convert
