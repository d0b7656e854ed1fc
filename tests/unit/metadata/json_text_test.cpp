#include "recis_convert/metadata/json_text.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace recis_convert {
namespace {

// The reference is nlohmann's own dump, which wrote these files before.
TEST(JsonTextTest, EscapesAsNlohmannDumps) {
  std::string every_byte;
  for (int c = 1; c < 0x80; ++c) every_byte.push_back(static_cast<char>(c));
  for (const std::string& text : {std::string("plain"), std::string(""), every_byte, std::string("商品_id\x7f"),
                                 std::string("a\"b\\c/d")}) {
    std::string out;
    append_json_string(out, text);
    EXPECT_EQ(out, nlohmann::json(text).dump()) << text;
  }
}

}  // namespace
}  // namespace recis_convert
