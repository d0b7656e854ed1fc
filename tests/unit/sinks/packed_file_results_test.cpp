#include "recis_convert/sinks/packed_file_results.h"

#include <gtest/gtest.h>

#include "block_catalogs.h"

namespace recis_convert {
namespace {

FileResult result(const std::string& name, bool written) {
  FileResult f;
  f.name = name;
  f.source_bytes = 100;
  f.written = written;
  f.output_bytes = written ? 60 : 0;
  f.checksum = 0x0123456789abcdefull;
  f.kept = {TensorInfo{"商品_id.id/part_0_1", DType::kI64, "I64", {3}, 0, 24}};
  f.dropped = {TensorInfo{"s^ ", DType::kBool, "bool", {}, 24, 25}};
  return f;
}

// A catalog that lists the kept tensor (it travels as a position) but not the dropped one (it travels by name).
const BlockCatalog kBlocks = testing::catalog_of({{"a", 0, ""}, {"商品_id.id/part_0_1", 0, "商品_id@id^0@1@2"}});

std::optional<std::string_view> name_in_blocks(uint32_t i) {
  if (i >= kBlocks.size()) return std::nullopt;
  return kBlocks[i].key;
}

TEST(PackedFileResultsTest, UnpacksWhatWasAddedInOrder) {
  PackedFileResults packed;
  packed.add(result("b", true), kBlocks);
  packed.add(result("a", false), kBlocks);
  ASSERT_EQ(packed.size(), 2u);
  auto decoded = PackedFileResults::decode(packed.encode());
  ASSERT_TRUE(decoded);
  auto back = decoded->unpack(name_in_blocks);
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].name, "b");
  EXPECT_FALSE((*back)[1].written);
  EXPECT_EQ((*back)[0].checksum, 0x0123456789abcdefull);
  EXPECT_EQ((*back)[0].kept[0].name, "商品_id.id/part_0_1");
  EXPECT_EQ((*back)[0].kept[0].shape, (std::vector<uint64_t>{3}));
  EXPECT_EQ((*back)[1].dropped[0].dtype, DType::kBool);
  EXPECT_EQ((*back)[1].dropped[0].dtype_spelling, "bool");  // RecIS's spelling survives
  EXPECT_EQ((*back)[1].dropped[0].begin, 24u);
  EXPECT_EQ((*back)[1].dropped[0].name, "s^ ");
}

TEST(PackedFileResultsTest, APositionTheCatalogDoesNotHaveDoesNotUnpack) {
  PackedFileResults packed;
  packed.add(result("a", true), kBlocks);
  auto back = packed.unpack([](uint32_t) -> std::optional<std::string_view> { return std::nullopt; });
  EXPECT_FALSE(back);
}

TEST(PackedFileResultsTest, TruncatedOrMiscountedBytesDoNotUnpack) {
  PackedFileResults packed;
  packed.add(result("a", true), kBlocks);
  const std::string bytes = packed.encode();
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    auto decoded = PackedFileResults::decode(bytes.substr(0, cut));
    EXPECT_FALSE(decoded && decoded->unpack(name_in_blocks)) << cut;
  }
  std::string miscounted = bytes;
  miscounted[0] = 2;  // the count says two results
  EXPECT_FALSE(PackedFileResults::decode(miscounted)->unpack(name_in_blocks));
}

}  // namespace
}  // namespace recis_convert
