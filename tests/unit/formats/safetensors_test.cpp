#include "recis_convert/formats/safetensors.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "test_files.h"

namespace recis_convert {
namespace {

using testing::safetensors_bytes;

// Parses a whole in-memory file the way read_safetensors_header does.
Result<SafetensorsHeader> parse_file(const std::string& bytes) {
  if (bytes.size() < 8) return bad_input("f", "file too small");
  auto n = check_length_prefix(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), "f");
  if (!n) return n.error();
  return parse_safetensors_header(std::string_view(bytes).substr(8, n.value()), bytes.size(), "f");
}

std::string error_of(const std::string& bytes) {
  auto parsed = parse_file(bytes);
  return parsed ? std::string("OK") : parsed.error().message;
}

const char* kWorkedExampleHeader =
    R"({"t.id/part_0_1":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},)"
    R"("t.embedding/part_0_1":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]}})";

TEST(SafetensorsTest, ParsesRecisWorkedExample) {
  std::string header = std::string(kWorkedExampleHeader) + " ";  // 143 + 1 pad = 144
  ASSERT_EQ(header.size(), 144u);
  std::string bytes = safetensors_bytes(header, std::string(32, 'x'));
  ASSERT_EQ(bytes.size(), 184u);
  auto parsed = parse_file(bytes);
  ASSERT_TRUE(parsed) << parsed.error().message;
  const auto& h = parsed.value();
  EXPECT_EQ(h.header_bytes, 144u);
  EXPECT_EQ(h.data_start(), 152u);
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors[0].name, "t.id/part_0_1");
  EXPECT_EQ(h.tensors[0].dtype, DType::kI64);
  EXPECT_EQ(h.tensors[1].name, "t.embedding/part_0_1");
  EXPECT_EQ(h.tensors[1].shape, (std::vector<uint64_t>{2, 2}));
  EXPECT_EQ(h.tensors[1].begin, 16u);
  EXPECT_EQ(h.tensors[1].nbytes(), 16u);
  EXPECT_FALSE(h.metadata.has_value());
}

TEST(SafetensorsTest, SerializeRecisHeaderReproducesWorkedExampleBytes) {
  auto parsed = parse_file(safetensors_bytes(std::string(kWorkedExampleHeader) + " ", std::string(32, 'x')));
  ASSERT_TRUE(parsed);
  std::string preamble = serialize_recis_header(parsed.value().tensors, std::nullopt);
  EXPECT_EQ(preamble, safetensors_bytes(std::string(kWorkedExampleHeader) + " ", ""));
}

TEST(SafetensorsTest, SerializePadsEightSpacesWhenAlreadyAligned) {
  TensorInfo t;
  t.name = "abcdefghijklmnopqrstuvwxyz12";
  t.dtype = DType::kU8;
  t.dtype_spelling = "U8";
  t.shape = {1};
  t.end = 1;
  std::string json = R"({"abcdefghijklmnopqrstuvwxyz12":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  ASSERT_EQ(json.size() % 8, 0u) << json.size();
  EXPECT_EQ(serialize_recis_header({t}, std::nullopt), safetensors_bytes(json + "        ", ""));
}

TEST(SafetensorsTest, SerializeKeepsNonAsciiNamesRaw) {
  TensorInfo t;
  t.name = "\xe5\x95\x86\xe5\x93\x81.id/part_0_1";  // "商品"
  t.dtype_spelling = "I64";
  t.dtype = DType::kI64;
  t.shape = {0};
  std::string preamble = serialize_recis_header({t}, std::nullopt);
  EXPECT_NE(preamble.find("\xe5\x95\x86\xe5\x93\x81.id"), std::string::npos);
  EXPECT_EQ(preamble.find("\\u"), std::string::npos);
}

TEST(SafetensorsTest, EmptyFileIsTooSmall) {
  auto parsed = read_safetensors_header(-1, 0, "f");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, ExitCode::kBadInput);
}

TEST(SafetensorsTest, HeaderLengthPastEndOfFile) {
  std::string bytes = safetensors_bytes("{}", "");
  bytes[0] = 100;  // claims 100 header bytes, the file has 2
  EXPECT_NE(error_of(bytes).find("runs past the end of the file"), std::string::npos);
}

TEST(SafetensorsTest, EightBytesOnlyWithNonZeroLength) {
  std::string bytes("\x05\0\0\0\0\0\0\0", 8);
  EXPECT_NE(error_of(bytes).find("past the end"), std::string::npos);
}

TEST(SafetensorsTest, HeaderTooLarge) {
  std::string bytes("<\0\0\0\0\xff\xff\xff", 8);
  EXPECT_NE(error_of(bytes).find("exceeds the limit of 100000000 bytes"), std::string::npos);
}

TEST(SafetensorsTest, HeaderJustAboveLimitIsRejectedBeforeReading) {
  unsigned char prefix[8] = {0x01, 0xe1, 0xf5, 0x05, 0, 0, 0, 0};  // 100,000,001
  auto n = check_length_prefix(prefix, 1ull << 40, "f");
  ASSERT_FALSE(n);
}

TEST(SafetensorsTest, HeaderNotUtf8) { EXPECT_NE(error_of(safetensors_bytes("\xff", "")).find("not valid JSON"), std::string::npos); }

TEST(SafetensorsTest, HeaderNotJson) { EXPECT_NE(error_of(safetensors_bytes("{", "")).find("not valid JSON"), std::string::npos); }

TEST(SafetensorsTest, HeaderNotAnObject) {
  EXPECT_NE(error_of(safetensors_bytes("[]", "")).find("not a JSON object"), std::string::npos);
}

TEST(SafetensorsTest, NulPaddedHeaderRejected) {
  EXPECT_NE(error_of(safetensors_bytes(std::string("{}\0\0\0\0\0\0", 8), "")).find("NUL"), std::string::npos);
}

TEST(SafetensorsTest, NulThenJunkRejected) {
  EXPECT_NE(error_of(safetensors_bytes(std::string("{}\0junk", 7), "")).find("NUL"), std::string::npos);
}

TEST(SafetensorsTest, TrailingJsonWhitespaceAccepted) { EXPECT_EQ(error_of(safetensors_bytes("{}\r \t\n", "")), "OK"); }

TEST(SafetensorsTest, LeadingJsonWhitespaceAccepted) { EXPECT_EQ(error_of(safetensors_bytes("\t\n{}\r ", "")), "OK"); }

TEST(SafetensorsTest, DuplicateTensorKeyRejected) {
  std::string header = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                       R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})";
  EXPECT_NE(error_of(safetensors_bytes(header, "xy")).find("key \"a\" twice"), std::string::npos);
}

TEST(SafetensorsTest, IdenticalDuplicateKeyStillRejected) {
  std::string entry = R"("a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]})";
  EXPECT_NE(error_of(safetensors_bytes("{" + entry + "," + entry + "}", "x")).find("twice"), std::string::npos);
}

TEST(SafetensorsTest, DuplicateFieldInsideEntryRejected) {
  std::string header = R"({"a":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}})";
  EXPECT_NE(error_of(safetensors_bytes(header, "x")).find("twice"), std::string::npos);
}

TEST(SafetensorsTest, UnknownDtypeRejected) {
  std::string header = R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})";
  EXPECT_NE(error_of(safetensors_bytes(header, "x")).find("unknown dtype \"Q7\""), std::string::npos);
}

TEST(SafetensorsTest, RecisLowercaseBoolAccepted) {
  std::string header = R"({"a":{"dtype":"bool","shape":[2],"data_offsets":[0,2]}})";
  auto parsed = parse_file(safetensors_bytes(header, "xy"));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed.value().tensors[0].dtype, DType::kBool);
  EXPECT_EQ(parsed.value().tensors[0].dtype_spelling, "bool");
}

TEST(SafetensorsTest, NegativeShapeRejected) {
  std::string header = R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})";
  EXPECT_NE(error_of(safetensors_bytes(header, "x")).find("non-integer or negative"), std::string::npos);
}

TEST(SafetensorsTest, FractionalShapeRejected) {
  std::string header = R"({"a":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}})";
  EXPECT_NE(error_of(safetensors_bytes(header, "x")).find("non-integer or negative"), std::string::npos);
}

TEST(SafetensorsTest, ShapeBeyondUint64Rejected) {
  std::string header = R"({"a":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,1]}})";
  EXPECT_NE(error_of(safetensors_bytes(header, "x")).find("non-integer or negative"), std::string::npos);
}

TEST(SafetensorsTest, DataOffsetsNotAPairRejected) {
  std::string header = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}})";
  EXPECT_NE(error_of(safetensors_bytes(header, "x")).find("not a pair"), std::string::npos);
}

TEST(SafetensorsTest, NegativeDataOffsetRejected) {
  std::string header = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})";
  EXPECT_NE(error_of(safetensors_bytes(header, "x")).find("not a pair"), std::string::npos);
}

TEST(SafetensorsTest, MissingFieldRejected) {
  std::string header = R"({"a":{"dtype":"U8","data_offsets":[0,1]}})";
  EXPECT_NE(error_of(safetensors_bytes(header, "x")).find("missing \"shape\""), std::string::npos);
}

TEST(SafetensorsTest, EntryNotAnObjectRejected) {
  EXPECT_NE(error_of(safetensors_bytes(R"({"a":5})", "")).find("not a JSON object"), std::string::npos);
}

TEST(SafetensorsTest, UnknownEntryFieldIgnoredLikeReference) {
  std::string header = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"dense":true}})";
  EXPECT_EQ(error_of(safetensors_bytes(header, "x")), "OK");
}

TEST(SafetensorsTest, OffsetsNotMatchingShapeNamesTensorShapeAndBytes) {
  std::string header = R"({"x.embedding/part_1_2":{"dtype":"F32","shape":[4,8],"data_offsets":[0,96]}})";
  auto parsed = parse_file(safetensors_bytes(header, std::string(96, 'x')));
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().describe(),
            "f: tensor \"x.embedding/part_1_2\" data_offsets [0,96] do not match shape [4,8] F32 (128 bytes)");
}

TEST(SafetensorsTest, InvalidInfoFromReferenceVectors) {
  std::string header = R"({"a":{"dtype":"I32","shape":[2,2],"data_offsets":[0,4]}})";
  EXPECT_NE(error_of(safetensors_bytes(header, "xxxx")).find("do not match shape [2,2] I32 (16 bytes)"), std::string::npos);
}

TEST(SafetensorsTest, OverlappingOffsetsRejected) {
  // The reference's "JSON attack": several tensors on the same bytes.
  std::string header = "{";
  for (int i = 0; i < 10; ++i) {
    header += (i ? "," : "") + std::string("\"t") + std::to_string(i) +
              R"(":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})";
  }
  header += "}";
  EXPECT_NE(error_of(safetensors_bytes(header, std::string(16, 'x'))).find("overlap or leave a hole"), std::string::npos);
}

TEST(SafetensorsTest, HoleBetweenTensorsRejected) {
  std::string header = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                       R"("b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}})";
  EXPECT_NE(error_of(safetensors_bytes(header, "xyz")).find("overlap or leave a hole"), std::string::npos);
}

TEST(SafetensorsTest, TrailingBytesAfterLastTensorRejected) {
  std::string header = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  EXPECT_NE(error_of(safetensors_bytes(header, "x" + std::string("extra_bogus_data_for_polyglot_file")))
                .find("truncated or trailing bytes"),
            std::string::npos);
}

TEST(SafetensorsTest, TruncatedDataRejected) {
  std::string header = R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})";
  EXPECT_NE(error_of(safetensors_bytes(header, "xx")).find("truncated or trailing bytes"), std::string::npos);
}

TEST(SafetensorsTest, ShapeProductOverflowRejected) {
  std::string header = R"({"a":{"dtype":"F32","shape":[2,18446744073709551614],"data_offsets":[0,16]},)"
                       R"("b":{"dtype":"F32","shape":[2,9223372036854775807],"data_offsets":[16,32]}})";
  EXPECT_NE(error_of(safetensors_bytes(header, std::string(32, 'x'))).find("overflows"), std::string::npos);
}

TEST(SafetensorsTest, ZeroDimTensorAllowed) {
  std::string header = R"({"a":{"dtype":"I32","shape":[],"data_offsets":[0,4]}})";
  EXPECT_EQ(error_of(safetensors_bytes(header, "xxxx")), "OK");
}

TEST(SafetensorsTest, ZeroSizedTensorAllowed) {
  std::string header = R"({"a":{"dtype":"F32","shape":[2,0],"data_offsets":[0,0]}})";
  EXPECT_EQ(error_of(safetensors_bytes(header, "")), "OK");
}

TEST(SafetensorsTest, HeaderOrderIndependentOfOffsetOrder) {
  std::string header = R"({"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},)"
                       R"("a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  auto parsed = parse_file(safetensors_bytes(header, "xy"));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed.value().tensors[0].name, "b");  // header order is kept
}

TEST(SafetensorsTest, MetadataStringMapAccepted) {
  std::string header = R"({"__metadata__":{"format":"pt"},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  auto parsed = parse_file(safetensors_bytes(header, "x"));
  ASSERT_TRUE(parsed);
  ASSERT_TRUE(parsed.value().metadata.has_value());
  EXPECT_EQ(parsed.value().metadata->at(0).second, "pt");
  EXPECT_EQ(parsed.value().tensors.size(), 1u);
}

TEST(SafetensorsTest, MetadataWithNonStringValueRejected) {
  std::string header = R"({"__metadata__":{"n":1}})";
  EXPECT_NE(error_of(safetensors_bytes(header, "")).find("is not a string"), std::string::npos);
}

TEST(SafetensorsTest, ReadsHeaderFromFileDescriptor) {
  testing::TempDir dir;
  std::string bytes = testing::recis_file({{"t.id/part_0_1", "I64", {2}, testing::pattern(16, 1)}});
  testing::write_file(dir.file("a.safetensors"), bytes);
  int fd = ::open(dir.file("a.safetensors").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  auto parsed = read_safetensors_header(fd, bytes.size(), dir.file("a.safetensors"));
  ::close(fd);
  ASSERT_TRUE(parsed) << parsed.error().describe();
  EXPECT_EQ(parsed.value().tensors[0].shape, (std::vector<uint64_t>{2}));
}

TEST(SafetensorsTest, TorchNamesOfDtypes) {
  EXPECT_EQ(dtype_torch_name(DType::kF32), "float32");
  EXPECT_EQ(dtype_torch_name(DType::kBF16), "bfloat16");
  EXPECT_EQ(dtype_torch_name(DType::kI64), "int64");
  EXPECT_EQ(dtype_torch_name(DType::kU64), "");
  EXPECT_EQ(dtype_bits(DType::kF4), 4u);
}

}  // namespace
}  // namespace recis_convert

namespace recis_convert {
namespace {

// Robust numbers: hostile sizes fail cleanly, without allocating what they claim.
TEST(SafetensorsRobustnessTest, TwoToTheSixtyElementsFailsWithoutAllocating) {
  std::string header = R"({"a":{"dtype":"F32","shape":[1073741824,1073741824],"data_offsets":[0,4]}})";
  auto parsed = parse_file(safetensors_bytes(header, "xxxx"));
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message.find("shape size overflows"), std::string::npos);  // 2^60 x 32 bits > 2^64
  std::string smaller = R"({"a":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4]}})";  // 2^40
  auto big = parse_file(safetensors_bytes(smaller, "xxxx"));
  ASSERT_FALSE(big);
  EXPECT_NE(big.error().message.find("do not match shape [1048576,1048576] F32 (4398046511104 bytes)"),
            std::string::npos);
}

TEST(SafetensorsRobustnessTest, HundredThousandTensorsParse) {
  std::vector<TensorInfo> tensors;
  for (uint64_t i = 0; i < 100000; ++i) {
    TensorInfo t;
    t.name = "t" + std::to_string(i);
    t.dtype = DType::kU8;
    t.dtype_spelling = "U8";
    t.shape = {1};
    t.begin = i;
    t.end = i + 1;
    tensors.push_back(t);
  }
  std::string file = serialize_recis_header(tensors, std::nullopt) + std::string(100000, 'x');
  auto parsed = parse_file(file);
  ASSERT_TRUE(parsed) << parsed.error().describe();
  EXPECT_EQ(parsed.value().tensors.size(), 100000u);
  EXPECT_EQ(parsed.value().tensors[99999].name, "t99999");
}

TEST(SafetensorsRobustnessTest, SixtyFourKibNamesWork) {
  TensorInfo t;
  t.name = std::string(64 * 1024, 'n');
  t.dtype = DType::kU8;
  t.dtype_spelling = "U8";
  t.shape = {2};
  t.end = 2;
  auto parsed = parse_file(serialize_recis_header({t}, std::nullopt) + "xy");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed.value().tensors[0].name.size(), 64u * 1024);
}

}  // namespace
}  // namespace recis_convert
