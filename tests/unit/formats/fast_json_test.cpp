#include "recis_convert/formats/fast_json.h"

#include <gtest/gtest.h>

#include <string>

namespace recis_convert::fast_json {
namespace {

// Without padding capacity the reader copies the text; its views must still point into the caller's text.
TEST(FastJsonTest, StringMapViewsPointIntoTheText) {
  const std::string text = R"( {"b.id/part_0_1": "b@id^0@1@2", "a": "x"} )";
  auto map = read_string_map(text, text.size());
  ASSERT_TRUE(map);
  ASSERT_EQ(map->size(), 2u);
  EXPECT_EQ(map->at(0).key, "b.id/part_0_1");
  EXPECT_EQ(map->at(0).value, "b@id^0@1@2");
  EXPECT_GE(map->at(1).value.data(), text.data());
  EXPECT_LT(map->at(1).value.data(), text.data() + text.size());
}

TEST(FastJsonTest, ParsesInPlaceWithPadding) {
  std::string text = R"({"商品_id.id/part_0_1":"商品_id@id^0@1@2"})";
  const size_t size = text.size();
  text.resize(size + kPadding);
  auto map = read_string_map(std::string_view(text.data(), size), text.size());
  ASSERT_TRUE(map);
  EXPECT_EQ(map->at(0).key, "商品_id.id/part_0_1");
}

// Everything outside the plain shape is left to the strict reader, valid or not.
TEST(FastJsonTest, LeavesOtherDocumentsToTheStrictReader) {
  for (const char* text : {
           R"({"a":"x","a":"y"})",     // a duplicate key
           R"({"a":"x\"y"})",          // an escape
           R"({"a\u0041":"x"})",       // an escaped key
           "{\"a\":\"x\ty\"}",         // a raw control character
           R"({"a":1})",               // not a string
           R"({"a":"x"} x)",           // trailing content
           R"({"a":"x"}{})",           // a second document
           R"({"a":"x",})",            // a trailing comma
           R"(["a"])",                 // not an object
           "",                         // empty
           "{\"a\":\"\xff\"}",         // not UTF-8
       }) {
    EXPECT_FALSE(read_string_map(text, 0)) << text;
  }
}

TEST(FastJsonTest, IndexNeedsBothObjectsAndUnsignedNumbers) {
  auto index = read_index(R"({"file_index":{"f":0},"block_index":{"b":0,"c":0}})", 0);
  ASSERT_TRUE(index);
  EXPECT_EQ(index->blocks.size(), 2u);
  EXPECT_EQ(index->files.at(0).key, "f");
  for (const char* text : {
           R"({"block_index":{}})",
           R"({"block_index":{},"file_index":{},"x":1})",
           R"({"block_index":{"b":-1},"file_index":{}})",
           R"({"block_index":{"b":1.0},"file_index":{}})",
           R"({"block_index":{"b":01},"file_index":{}})",
           R"({"block_index":{"b":18446744073709551616},"file_index":{}})",
           R"({"block_index":{},"file_index":{},"block_index":{}})",
           R"({"block_index":{"b":0,"b":1},"file_index":{}})",
       }) {
    EXPECT_FALSE(read_index(text, 0)) << text;
  }
}

TEST(FastJsonTest, HeaderTensorsMetadataAndShapes) {
  auto header = read_header(
      R"({"__metadata__":{"z":"1","a":"2"},"t":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
      R"("s":{"data_offsets":[24,24],"shape":[],"dtype":"I64"}})",
      0);
  ASSERT_TRUE(header);
  ASSERT_EQ(header->tensors.size(), 2u);
  const HeaderTensor& t = header->tensors[0];
  EXPECT_EQ(t.name, "t");
  EXPECT_EQ(t.dtype, "F32");
  ASSERT_EQ(t.rank, 2u);
  EXPECT_EQ(header->dims[t.first_dim + 1], 3u);
  EXPECT_EQ(header->tensors[1].rank, 0u);
  EXPECT_EQ(header->tensors[1].begin, 24u);
  ASSERT_TRUE(header->has_metadata);
  EXPECT_EQ(header->metadata.at(0).key, "z");
  EXPECT_FALSE(read_header(R"({"__metadata__":null})", 0)->has_metadata);
  for (const char* text : {
           R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}})",
           R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"dtype":"F32"}})",
           R"({"t":{"dtype":"F32","shape":[1]}})",
           R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})",
           R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
           R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
           R"({"__metadata__":{"a":1}})",
           R"({"__metadata__":{"a":"1","a":"2"}})",
           R"({"__metadata__":null,"__metadata__":null})",
       }) {
    EXPECT_FALSE(read_header(text, 0)) << text;
  }
}

// fuzz_fast_json's first find: on-demand iteration ended this invalid document's object early, without an error.
TEST(FastJsonTest, InvalidStructureAfterAValueIsLeftToTheStrictReader) {
  const std::string text =
      "{\x22""user_em_id.embedding/part_0_3\x22"": \x22""item_id@embeddi691@65536@65536\x22"",\x0a"
      "    \x22""\xe5""\x95""\x86""\xe5""\x93""\x81""_id.sparseD_adamw_exp_avg_sq/part_0_3\x22"": \x22"
      "\xe5""\x95""\x86""\xe5""\x93""\x81""_id@sparse_adamw_exp_avg_sq^00000@21846@65536\x22"",\x0a"
      "    \x22""\xe5""\x95""\x86""\xe5""\x93""\x81""_id.sparse_adamw_exp_avg_sq/part_1_3\x22"": \x22""\xe5"
      "\x95""\x86""\xe5""\x93""\x81""_id@sparse_adamw_exp_avg_sq^21846@43691@65536\x22"",\x0a""    \x22"
      "\xe5""\x95""\x86""\xe5""\x93""\x81""_id.sparse_adamw_exp_avg_sq/part_2_3\x22"": \x22""\xe5""\x95"
      "\x86""\xe5""\x93""\x81""_id@sparse_adamw_exp_avgid.sparse_adamw_exp_avg/part_2_3\x22"":{\x22"
      "dtype\x22"":\x22""F32\x22"",\x22""shape\x22"":[206,8],\x22""data_offsets\x22"":[0,6592]},\x22"
      "item_id.sparse_adamw_exp_avg/part_2_3\x22"":{\x22""dtype\x22"":\x22""F16\x22"",\x22""shape\x22"
      "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE  \x22""item_id.embedding/part_0_3\x22"
      ": \x22""item_id@embeddi691@65536@65536\x22"",\x0a""    \x22""\xe5""\x95""\x86""\xe5""\x93""\x81"
      "_id.sparseD_adamw_exp_avg_sq/part_0_3\x22"": \x22""\xe5""\x95""\x86""\xe5""\x93""\x81"
      "_id@sparse_adamw_exp_avg_sq^00000@21846@65536\x22"",\x0a""    \x22""\xe5""\x95""\x86""\xe5""\x93"
      "\x81""_id.sparse_adamw_exp_avg_sq/part_1_3\x22"": \x22""\xe5""\x95""\x86""\xe5""\x93""\x81"
      "_id@sparse_adamw_exp_avg_sq^21846@43691@65536\x22"",\x0a""[10512,10512]},\x22""\xe5""\x95""\x86"
      "\xe5""\x93""\x81""\xe5""\x95""\x86""\xe5""\x93""\x81""_id.sparse_adamw_exp_avg_sq/part_1_3\x22"
      ":\x22""F32\x22"",\x22""shape\x22"":[26,4],\x22""data_offsets\x22"":[10512,10928]}} ";
  EXPECT_FALSE(read_string_map(text, 0));
  EXPECT_FALSE(read_index(text, 0));
  EXPECT_FALSE(read_header(text, 0));
}

TEST(FastJsonTest, UniqueKeysSortsWhenNeeded) {
  std::vector<std::string_view> keys = {"b", "a", "c"};
  EXPECT_TRUE(unique_keys(keys));
  keys = {"b", "a", "b"};
  EXPECT_FALSE(unique_keys(keys));
}

}  // namespace
}  // namespace recis_convert::fast_json
