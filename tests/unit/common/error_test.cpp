#include "recis_convert/common/error.h"

#include <gtest/gtest.h>

namespace recis_convert {
namespace {

TEST(ErrorTest, Utf8IsCheckedStrictly) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("user_table"));
  EXPECT_TRUE(is_valid_utf8("用户表"));
  EXPECT_TRUE(is_valid_utf8("\xF0\x9F\x98\x80"));   // U+1F600
  EXPECT_FALSE(is_valid_utf8("us\xFF" "er"));           // not a lead byte
  EXPECT_FALSE(is_valid_utf8("\xC3"));               // truncated
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));           // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));       // a surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));   // past U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xE4\xB8"));           // cut inside a character
}

TEST(ErrorTest, QuotedNameOfBytesThatAreNotUtf8DoesNotThrow) {
  EXPECT_EQ(quoted_name("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(quoted_name("us\xFF" "er"), "\"us\xEF\xBF\xBD" "er\"");  // U+FFFD in place of the byte
}

}  // namespace
}  // namespace recis_convert
