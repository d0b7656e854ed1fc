#include "recis_convert/metadata/export_files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "recis_convert/common/checksum.h"
#include "test_files.h"

namespace recis_convert {
namespace {

using testing::TempDir;

TEST(ExportFilesTest, MetadataFileIsWrittenOnceAndDescribedByItsBytes) {
  TempDir dir;
  auto written = write_metadata_file(dir.path(), "index", "{}", false);
  ASSERT_TRUE(written) << written.error().describe();
  EXPECT_EQ(written.value().name, "index");
  EXPECT_EQ(written.value().bytes, 2u);
  EXPECT_EQ(written.value().checksum, Checksum::of("{}", 2));
  EXPECT_EQ(testing::read_file(dir.file("index")), "{}");
  auto again = write_metadata_file(dir.path(), "index", "{}", false);  // never over a file already there
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ExitCode::kOutput);
  auto described = describe_written_file(dir.file("index"), "index");
  ASSERT_TRUE(described);
  EXPECT_EQ(described.value().checksum, written.value().checksum);
}

TEST(ExportFilesTest, AssetIsCopiedUnderItsOwnNameAndADirectoryIsRefused) {
  TempDir dir;
  testing::write_file(dir.file("vocab.txt"), "a\nb\n");
  ASSERT_EQ(::mkdir(dir.file("out").c_str(), 0777), 0);
  auto copied = copy_asset(dir.file("vocab.txt"), dir.file("out"), false);
  ASSERT_TRUE(copied) << copied.error().describe();
  EXPECT_EQ(copied.value().name, "vocab.txt");
  EXPECT_EQ(testing::read_file(dir.file("out/vocab.txt")), "a\nb\n");
  auto directory = copy_asset(dir.file("out"), dir.path(), false);
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().code, ExitCode::kBadInput);
  EXPECT_EQ(directory.error().file, dir.file("out"));
}

TEST(ExportFilesTest, ConfigsMustBeStrictJsonObjects) {
  TempDir dir;
  testing::write_file(dir.file("fg.json"), R"({"features": []})");
  auto ok = read_json_config(dir.file("fg.json"), "fg config");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok.value(), R"({"features": []})");  // shipped byte for byte
  testing::write_file(dir.file("list.json"), "[1]");
  auto list = read_json_config(dir.file("list.json"), "fg config");
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().message, "fg config is not a JSON object");
  testing::write_file(dir.file("twice.json"), R"({"a": 1, "a": 2})");
  EXPECT_FALSE(read_json_config(dir.file("twice.json"), "mc config"));
}

}  // namespace
}  // namespace recis_convert

namespace recis_convert {
namespace {

TEST(MetadataFileOutTest, WritesAsItGoesAndDescribesTheWholeFile) {
  testing::TempDir dir;
  MetadataFileOut out(dir.path(), "big.json", false);
  std::string expected;
  for (int i = 0; i < 300000; ++i) {  // several MiB: flushed many times
    const std::string entry = "\"key" + std::to_string(i) + "\": " + std::to_string(i) + ",\n";
    out.text() += entry;
    expected += entry;
    out.entry_done();
  }
  auto described = out.finish();
  ASSERT_TRUE(described) << described.error().describe();
  EXPECT_EQ(described.value().name, "big.json");
  EXPECT_EQ(described.value().bytes, expected.size());
  EXPECT_EQ(described.value().checksum, Checksum::of(expected.data(), expected.size()));
  EXPECT_EQ(testing::read_file(dir.file("big.json")), expected);
}

TEST(MetadataFileOutTest, AnExistingFileIsAnOutputErrorNamingIt) {
  testing::TempDir dir;
  testing::write_file(dir.file("index"), "x");
  MetadataFileOut out(dir.path(), "index", false);
  out.text() += "{}";
  auto described = out.finish();
  ASSERT_FALSE(described);
  EXPECT_EQ(described.error().code, ExitCode::kOutput);
  EXPECT_EQ(described.error().file, dir.file("index"));
}

}  // namespace
}  // namespace recis_convert
