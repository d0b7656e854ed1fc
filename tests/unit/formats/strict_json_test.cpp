#include "recis_convert/formats/strict_json.h"

#include <gtest/gtest.h>

namespace recis_convert {
namespace {

TEST(StrictJsonTest, KeepsKeyOrder) {
  auto parsed = parse_strict_json(R"({"b":1,"a":2})", "f", "index");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed.value().top_level_keys, (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(parsed.value().value.at("a"), 2);
}

TEST(StrictJsonTest, TopLevelKeysIgnoreNestedObjects) {
  auto parsed = parse_strict_json(R"({"z":{"y":1,"x":{"w":2}},"a":[{"v":3}]})", "f", "header");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed.value().top_level_keys, (std::vector<std::string>{"z", "a"}));
}

TEST(StrictJsonTest, RejectsNulByte) {
  auto parsed = parse_strict_json(std::string_view("{}\0", 3), "f", "index");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().describe(), "f: index contains a NUL byte");
}

TEST(StrictJsonTest, RejectsDuplicateKeyInNestedObject) {
  auto parsed = parse_strict_json(R"({"a":{"x":1,"x":2},"b":{"x":3}})", "f", "index");
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message.find("\"x\" twice"), std::string::npos);
}

TEST(StrictJsonTest, SameKeyInSiblingObjectsIsFine) {
  EXPECT_TRUE(parse_strict_json(R"({"a":{"x":1},"b":{"x":3}})", "f", "index"));
}

TEST(StrictJsonTest, ReportsSyntaxErrorsAsBadInput) {
  auto parsed = parse_strict_json("{", "f", "index");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, ExitCode::kBadInput);
}

}  // namespace
}  // namespace recis_convert
