#include "recis_convert/sources/input_verifier.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "recis_convert/common/file_io.h"
#include "test_files.h"

namespace recis_convert {
namespace {

constexpr uint64_t kPiece = 1000;  // a file of 3 pieces and a bit

std::string contents() {
  std::string bytes(3210, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 % 251);
  return bytes;
}

// What a manifest says of `bytes` (the checksum in pieces of kPiece).
InputVerifier::Expected manifest_of(const std::string& bytes) {
  PieceChecksum sum(kPiece);
  sum.update(bytes.data(), bytes.size());
  return {bytes.size(), sum.digest(), kPiece};
}

// Feeds `verifier` bytes [offset, offset + size) of `bytes` as read from `path`.
Status feed(InputVerifier& verifier, const std::string& path, int fd, const std::string& bytes, uint64_t offset,
            uint64_t size) {
  return verifier.saw(path, fd, offset, bytes.data() + offset, size);
}

struct Read {
  uint64_t offset, size;
};

class InputVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("model-000000-of-000001.safetensors");
    testing::write_file(path_, bytes_);
    auto opened = open_input_file(path_);
    ASSERT_TRUE(opened);
    fd_ = std::move(opened).value();
  }
  // The reads fed in order, then finish(): its problems, and the bytes the verifier had to read itself.
  std::pair<std::vector<std::string>, uint64_t> check(const std::vector<Read>& reads,
                                                      const std::string& manifest_bytes) {
    InputVerifier verifier({{path_, manifest_of(manifest_bytes)}});
    for (const Read& r : reads) EXPECT_TRUE(feed(verifier, path_, fd_.get(), bytes_, r.offset, r.size));
    auto problems = verifier.finish();
    EXPECT_TRUE(problems) << problems.error().describe();
    EXPECT_EQ(verifier.bytes_seen() + verifier.bytes_read(), bytes_.size());  // every byte hashed once
    return {problems ? problems.value() : std::vector<std::string>{}, verifier.bytes_read()};
  }

  testing::TempDir dir_;
  std::string path_;
  const std::string bytes_ = contents();
  FileDescriptor fd_{-1};
};

TEST_F(InputVerifierTest, ReadsInOrderAreHashedWithoutReadingAgain) {
  auto [problems, read] = check({{0, 8}, {8, 1500}, {1508, 1702}}, bytes_);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(read, 0u);
}

TEST_F(InputVerifierTest, GapsAndTheRestAreReadAndReadsAgainPassedOver) {
  // a header the reads skip, a tensor read twice, one read backwards, the end never read
  auto [problems, read] = check({{100, 900}, {100, 900}, {2000, 500}, {1000, 400}, {50, 20}}, bytes_);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(read, 100u + 1000u + 710u);  // [0, 100), [1000, 2000), [2500, 3210)
}

TEST_F(InputVerifierTest, NothingReadIsTheWholeFileRead) {
  auto [problems, read] = check({}, bytes_);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(read, bytes_.size());
}

TEST_F(InputVerifierTest, AFlippedByteIsAProblemNamingTheFileWhereverItWasRead) {
  std::string manifest = bytes_;
  manifest[2345] ^= 0x01;  // the manifest's bytes differ from the file's in one bit
  for (const auto& reads : {std::vector<Read>{{0, bytes_.size()}}, std::vector<Read>{{0, 100}}, std::vector<Read>{}}) {
    auto [problems, read] = check(reads, manifest);
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_EQ(problems[0].rfind(path_ + ": checksum ", 0), 0u) << problems[0];
    EXPECT_NE(problems[0].find(", manifest.json says " + Checksum::hex(manifest_of(manifest).checksum)),
              std::string::npos)
        << problems[0];
  }
}

TEST_F(InputVerifierTest, OtherFilesAreNotItsConcern) {
  InputVerifier verifier({{path_, manifest_of(bytes_)}});
  const std::string other = "junk";
  EXPECT_TRUE(verifier.saw(dir_.file("other"), -1, 0, other.data(), other.size()));
  EXPECT_TRUE(feed(verifier, path_, fd_.get(), bytes_, 0, bytes_.size()));
  auto problems = verifier.finish();
  ASSERT_TRUE(problems);
  EXPECT_TRUE(problems.value().empty());
  EXPECT_EQ(verifier.bytes_seen(), bytes_.size());
}

TEST_F(InputVerifierTest, AFailedStreamChecksOnlyTheFileItsErrorNames) {
  const std::string other = dir_.file("model-000001-of-000002.safetensors");
  testing::write_file(other, bytes_);
  std::string manifest = bytes_;
  manifest[7] ^= 0x01;
  InputVerifier verifier({{path_, manifest_of(manifest)}, {other, manifest_of(manifest)}});
  auto problems = verifier.finish(path_);  // the other file is not read
  ASSERT_TRUE(problems);
  ASSERT_EQ(problems.value().size(), 1u);
  EXPECT_EQ(problems.value()[0].rfind(path_ + ": checksum ", 0), 0u) << problems.value()[0];
  EXPECT_EQ(verifier.bytes_read(), bytes_.size());
  problems = verifier.finish(dir_.file("not-one-of-them"));
  ASSERT_TRUE(problems);
  EXPECT_TRUE(problems.value().empty());
}

TEST_F(InputVerifierTest, AFileThatCannotBeReadIsAnErrorNamingIt) {
  InputVerifier verifier({{dir_.file("gone"), manifest_of(bytes_)}});
  auto problems = verifier.finish();
  ASSERT_FALSE(problems);
  EXPECT_NE(problems.error().describe().find(dir_.file("gone")), std::string::npos);
}

}  // namespace
}  // namespace recis_convert
