#include "recis_convert/common/checksum.h"

#include <gtest/gtest.h>

#include <string>

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

}  // namespace
}  // namespace recis_convert
