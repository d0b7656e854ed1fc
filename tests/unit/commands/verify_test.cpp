#include "recis_convert/commands/verify.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fcntl.h>

#include "recis_convert/common/checksum.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/safetensors.h"
#include "recis_convert/metadata/metadata.h"
#include "recis_convert/sources/checkpoint.h"
#include "test_files.h"

namespace recis_convert {
namespace {

std::string manifest_with(const std::string& name, uint64_t bytes, const std::string& hex) {
  return R"({"data_files": [{"name": ")" + name + R"(", "bytes": )" + std::to_string(bytes) + R"(, "xxh3_64": ")" +
         hex + R"("}], "metadata_files": []})";
}

TEST(VerifyTest, ChecksEveryListedFile) {
  testing::TempDir dir;
  testing::write_file(dir.file("a.safetensors"), "hello");
  const std::string hex = Checksum::hex(Checksum::of("hello", 5));
  testing::write_file(dir.file("manifest.json"), manifest_with("a.safetensors", 5, hex));
  auto files = read_manifest_files(dir.path());
  ASSERT_TRUE(files) << files.error().describe();
  ASSERT_EQ(files.value().size(), 1u);
  EXPECT_TRUE(check_manifest_file(dir.path(), files.value()[0]).empty());
  EXPECT_TRUE(check_unlisted_files(dir.path(), files.value()).empty());

  testing::write_file(dir.file("a.safetensors"), "hellO");
  auto problems = check_manifest_file(dir.path(), files.value()[0]);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("a.safetensors: checksum"), std::string::npos) << problems[0];
  testing::write_file(dir.file("a.safetensors"), "hello!");
  problems = check_manifest_file(dir.path(), files.value()[0]);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("6 bytes, manifest.json says 5"), std::string::npos) << problems[0];

  testing::write_file(dir.file("stray"), "x");
  problems = check_unlisted_files(dir.path(), files.value());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("stray: not in manifest.json"), std::string::npos);
}

// A file of more than one piece is listed with its pieces' checksum, which verify checks in the manifest's pieces;
// the key must be the one the size calls for.
TEST(VerifyTest, ChecksAFileInPiecesByTheManifestsPieceSize) {
  testing::TempDir dir;
  const std::string data = testing::pattern(2500, 7);
  testing::write_file(dir.file("big.safetensors"), data);
  PieceChecksum pieces(1000);
  pieces.update(data.data(), data.size());
  auto manifest = [&](const std::string& key, uint64_t piece_bytes) {
    return R"({"checksum_piece_bytes": )" + std::to_string(piece_bytes) + R"(, "data_files": [{"name": "big.safetensors", "bytes": 2500, ")" +
           key + R"(": ")" + Checksum::hex(pieces.digest()) + R"("}], "metadata_files": []})";
  };
  testing::write_file(dir.file("manifest.json"), manifest("xxh3_64_pieces", 1000));
  auto files = read_manifest_files(dir.path());
  ASSERT_TRUE(files) << files.error().describe();
  EXPECT_EQ(files.value()[0].piece_bytes, 1000u);
  EXPECT_TRUE(check_manifest_file(dir.path(), files.value()[0]).empty());
  testing::write_file(dir.file("manifest.json"), manifest("xxh3_64_pieces", 500));  // other pieces, other checksum
  files = read_manifest_files(dir.path());
  ASSERT_TRUE(files);
  EXPECT_EQ(check_manifest_file(dir.path(), files.value()[0]).size(), 1u);
  for (const auto& [key, piece_bytes] : {std::pair{"xxh3_64", 1000}, std::pair{"xxh3_64_pieces", 4096},
                                         std::pair{"xxh3_64_pieces", 0}}) {  // the key its size does not call for
    testing::write_file(dir.file("manifest.json"), manifest(key, piece_bytes));
    EXPECT_FALSE(read_manifest_files(dir.path())) << key << " " << piece_bytes;
  }
}

TEST(VerifyTest, RejectsManifestsThatPointOutsideOrLackChecksums) {
  testing::TempDir dir;
  for (const auto& bad : {manifest_with("../etc/passwd", 1, "0000000000000000"),
                          manifest_with("/abs", 1, "0000000000000000"), manifest_with("a", 1, "xyz"),
                          std::string(R"({"data_files": []})"), std::string("not json")}) {
    testing::write_file(dir.file("manifest.json"), bad);
    auto files = read_manifest_files(dir.path());
    ASSERT_FALSE(files) << bad;
    EXPECT_EQ(files.error().code, ExitCode::kBadInput);
    EXPECT_EQ(files.error().file, dir.file("manifest.json"));
  }
  testing::TempDir empty;
  EXPECT_FALSE(read_manifest_files(empty.path()));
}

}  // namespace
}  // namespace recis_convert

namespace recis_convert {
namespace {

// index, tensorkey.json and the torch_rank json of a small checkpoint, regenerated from its own headers as an
// export would have them; then changed by one byte at the end, or cut short.
TEST(VerifyTest, MetadataFilesAreComparedWithTheHeadersToTheLastByte) {
  testing::TempDir dir;
  testing::write_small_checkpoint(dir.path());
  testing::write_file(dir.file("torch_rank_weights_embs_table_multi_shard.json"), "");
  ASSERT_FALSE(check_metadata_files(dir.path()).empty());  // an empty torch_rank json does not match
  // What the check expects, taken from its own writer: make the files equal to it.
  auto listing = discover_checkpoint(dir.path());
  ASSERT_TRUE(listing);
  std::vector<FileResult> files;
  for (const auto& file : listing.value().files) {
    FileDescriptor fd(::open(dir.file(file.name).c_str(), O_RDONLY | O_CLOEXEC));
    auto header = read_safetensors_header(fd.get(), file.size, file.name);
    ASSERT_TRUE(header);
    FileResult result;
    result.name = file.name;
    result.written = true;
    result.kept = header.value().tensors;
    files.push_back(result);
  }
  const std::string index = make_index_json(files);
  testing::write_file(dir.file("index"), index);
  testing::write_file(dir.file("tensorkey.json"), make_tensorkey_json(files, listing.value().blocks));
  testing::write_file(dir.file("torch_rank_weights_embs_table_multi_shard.json"),
                      make_torch_rank_json(files, listing.value().blocks));
  EXPECT_TRUE(check_metadata_files(dir.path()).empty());

  testing::write_file(dir.file("torch_rank_weights_embs_table_multi_shard.json"),
                      make_torch_rank_json(files, listing.value().blocks) + " ");
  auto problems = check_metadata_files(dir.path());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("torch_rank_weights_embs_table_multi_shard.json: does not match"), std::string::npos);
  testing::write_file(dir.file("torch_rank_weights_embs_table_multi_shard.json"),
                      make_torch_rank_json(files, listing.value().blocks).substr(1));
  EXPECT_EQ(check_metadata_files(dir.path()).size(), 1u);
}

}  // namespace
}  // namespace recis_convert
