#include "recis_convert/common/checksum.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "test_files.h"

namespace recis_convert {
namespace {

TEST(ChecksumTest, EmptyInputHasTheXxh3ReferenceValue) {
  EXPECT_EQ(Checksum::of("", 0), 0x2D06800538D394C2ull);
  EXPECT_EQ(Checksum::hex(Checksum::of("", 0)), "2d06800538d394c2");
}

TEST(ChecksumTest, StreamingEqualsOneShot) {
  std::string data(100000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  Checksum streaming;
  streaming.update(data.data(), 1);
  streaming.update(data.data() + 1, 4095);
  streaming.update(data.data() + 4096, data.size() - 4096);
  EXPECT_EQ(streaming.digest(), Checksum::of(data.data(), data.size()));
}

TEST(ChecksumTest, DifferentBytesDifferentDigest) {
  EXPECT_NE(Checksum::of("a", 1), Checksum::of("b", 1));
}

TEST(ChecksumTest, HexIsSixteenDigitsZeroPadded) { EXPECT_EQ(Checksum::hex(0xabc), "0000000000000abc"); }

using testing::pattern;
using testing::TempDir;

// The definition, written out: one piece is the plain XXH3-64; more are the XXH3-64 of the pieces' XXH3-64s, each
// as 8 little-endian bytes.
uint64_t reference(const std::string& data, size_t piece) {
  if (piece == 0 || data.size() <= piece) return Checksum::of(data.data(), data.size());
  std::string digests;
  for (size_t at = 0; at < data.size(); at += piece) {
    const uint64_t d = Checksum::of(data.data() + at, std::min(piece, data.size() - at));
    for (int b = 0; b < 8; ++b) digests.push_back(static_cast<char>(d >> (8 * b)));
  }
  return Checksum::of(digests.data(), digests.size());
}

TEST(PieceChecksumTest, MatchesTheDefinitionWhateverTheUpdates) {
  for (size_t size : {0, 1, 999, 1000, 1001, 4000, 4001}) {
    const std::string data = pattern(size, 1);
    for (size_t piece : {0, 1000, 4096}) {
      PieceChecksum c(piece);
      for (size_t at = 0; at < size; at += 333) c.update(data.data() + at, std::min<size_t>(333, size - at));
      EXPECT_EQ(c.digest(), reference(data, piece)) << size << " " << piece;
      EXPECT_EQ(c.pieces().size(), PieceChecksum::count(size, piece)) << size << " " << piece;
    }
  }
}

TEST(PieceChecksumTest, ASmallFileHasItsPlainChecksum) {
  const std::string data = pattern(5000, 2);
  PieceChecksum c(1 << 20);
  c.update(data.data(), data.size());
  EXPECT_EQ(c.digest(), Checksum::of(data.data(), data.size()));
  EXPECT_EQ(PieceChecksum::combine({}), Checksum::of("", 0));
}

TEST(PieceChecksumTest, RanksReadingPiecesOfAFileCombineToTheWholeFilesChecksum) {
  TempDir dir;
  const std::string data = pattern(10 * 1000 + 7, 3);
  const std::string path = dir.file("f");
  testing::write_file(path, data);
  auto whole = Checksum::of_file(path, ExitCode::kOutput, 1000);
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole.value().bytes, data.size());
  EXPECT_EQ(whole.value().checksum, reference(data, 1000));
  std::vector<uint64_t> pieces;
  for (uint64_t first : {0, 4, 9}) {  // three ranks' shares: 4, 5 and the last (asking past the end)
    auto share = checksum_file_pieces(path, 1000, first, first == 9 ? 5 : (first == 0 ? 4 : 5), ExitCode::kOutput);
    ASSERT_TRUE(share);
    pieces.insert(pieces.end(), share.value().begin(), share.value().end());
  }
  ASSERT_EQ(pieces.size(), 11u);
  EXPECT_EQ(PieceChecksum::combine(pieces), whole.value().checksum);
  auto one = checksum_file_pieces(path, 0, 0, 1, ExitCode::kOutput);
  ASSERT_TRUE(one);
  EXPECT_EQ(one.value(), std::vector<uint64_t>{Checksum::of(data.data(), data.size())});
  EXPECT_FALSE(checksum_file_pieces(dir.file("absent"), 1000, 0, 1, ExitCode::kOutput));
}

}  // namespace
}  // namespace recis_convert
