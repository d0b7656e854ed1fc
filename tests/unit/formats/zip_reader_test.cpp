#include "recis_convert/formats/zip_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "torch_fixtures.h"

namespace recis_convert {
namespace {

Result<ZipIndex> index_of(const std::string& name) {
  const std::string path = testing::torch_fixture(name);
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return bad_input(path, "cannot open");
  struct stat st {};
  ::fstat(fd, &st);
  auto index = read_zip_index(fd, static_cast<uint64_t>(st.st_size), path);
  ::close(fd);
  return index;
}

TEST(ZipReaderTest, ListsTheEntriesOfATorchSaveArchive) {
  auto index = index_of("one_entry.pt");
  ASSERT_TRUE(index) << index.error().describe();
  EXPECT_TRUE(index.value().entries.count("one_entry/data.pkl"));
  EXPECT_TRUE(index.value().entries.count("one_entry/data/0"));
  EXPECT_EQ(index.value().entries.at("one_entry/data/0").size, 24u);  // 2 x 3 float32
}

TEST(ZipReaderTest, ReadsZip64Directories) {
  auto index = index_of("zip64.pt");
  ASSERT_TRUE(index) << index.error().describe();
  EXPECT_GT(index.value().entries.size(), 65535u);
  EXPECT_TRUE(index.value().entries.count("archive/data.pkl"));
}

TEST(ZipReaderTest, VerifiesCrcWhenReading) {
  const std::string path = testing::torch_fixture("crc_mismatch.pt");
  auto index = index_of("crc_mismatch.pt");
  ASSERT_TRUE(index);
  int fd = ::open(path.c_str(), O_RDONLY);
  auto data = read_zip_entry(fd, index.value(), index.value().entries.at("one_entry/data/0"), 1 << 20);
  ::close(fd);
  ASSERT_FALSE(data);
  EXPECT_NE(data.error().message.find("CRC-32"), std::string::npos);
}

TEST(ZipReaderTest, TruncatedArchiveIsBadInput) {
  auto index = index_of("truncated.pt");
  ASSERT_FALSE(index);
  EXPECT_EQ(index.error().code, ExitCode::kBadInput);
}

TEST(ZipReaderTest, CompressedEntriesAreRejected) {
  auto index = index_of("compressed.pt");
  ASSERT_FALSE(index);
  EXPECT_NE(index.error().message.find("compressed"), std::string::npos);
}

TEST(ZipReaderTest, LegacyNonZipFormatIsNamed) {
  auto index = index_of("legacy.pt");
  ASSERT_FALSE(index);
  EXPECT_NE(index.error().message.find("legacy"), std::string::npos);
}

}  // namespace
}  // namespace recis_convert
