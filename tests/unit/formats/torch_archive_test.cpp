#include "recis_convert/formats/torch_archive.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "torch_fixtures.h"

namespace recis_convert {
namespace {

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

// Every tensor of <name>.pt has the dtype, shape, kind and bytes that Python wrote into <name>.expected.json.
void expect_matches_python(const std::string& name) {
  auto state = read_torch_state_dict(testing::torch_fixture(name + ".pt"));
  ASSERT_TRUE(state) << state.error().describe();
  std::ifstream in(testing::torch_fixture(name + ".expected.json"));
  std::stringstream text;
  text << in.rdbuf();
  auto expected = nlohmann::ordered_json::parse(text.str());
  ASSERT_EQ(state.value().tensors.size(), expected.size());
  size_t i = 0;
  for (const auto& [key, want] : expected.items()) {
    const TorchTensor& t = state.value().tensors[i++];
    EXPECT_EQ(t.name, key);  // insertion order is kept
    EXPECT_EQ(t.dtype, *parse_dtype(want["dtype"].get<std::string>())) << key;
    EXPECT_EQ(t.shape, want["shape"].get<std::vector<uint64_t>>()) << key;
    EXPECT_EQ(t.is_parameter, want["is_parameter"].get<bool>()) << key;
    auto data = read_tensor_data(state.value(), t);
    ASSERT_TRUE(data) << data.error().describe();
    EXPECT_EQ(hex(data.value()), want["hex"].get<std::string>()) << key;
  }
}

std::string error_of(const std::string& name) {
  auto state = read_torch_state_dict(testing::torch_fixture(name));
  if (state) return "OK";
  EXPECT_EQ(state.error().code, ExitCode::kBadInput);
  EXPECT_NE(state.error().describe().find(name), std::string::npos) << "the error must name the file";
  return state.error().message;
}

TEST(TorchArchiveTest, OrderedDictWithEveryDtype) { expect_matches_python("every_dtype"); }
TEST(TorchArchiveTest, OneEntryDict) { expect_matches_python("one_entry"); }
TEST(TorchArchiveTest, NonContiguousViewsOfASharedStorage) { expect_matches_python("views"); }
TEST(TorchArchiveTest, ParametersAreTensors) { expect_matches_python("parameters"); }
TEST(TorchArchiveTest, ZeroDimTensors) { expect_matches_python("scalars"); }
TEST(TorchArchiveTest, ModuleStateDictWithMetadata) { expect_matches_python("module_state_dict"); }
TEST(TorchArchiveTest, CudaLocationIsReadToHostMemory) { expect_matches_python("cuda_location"); }

// .format_version, .storage_alignment (torch 2.7+) and .data/serialization_id only help torch find records
TEST(TorchArchiveTest, RecordsNewerTorchAddsAreReadPast) { expect_matches_python("newer_records"); }

TEST(TorchArchiveTest, FormatVersionsTorchRefusesAreRefused) {
  auto future = read_torch_state_dict(testing::torch_fixture("future_version.pt"));
  ASSERT_FALSE(future);
  EXPECT_NE(future.error().message.find("archive format version \"11\\n\" is not one torch reads (1 to 10)"),
            std::string::npos) << future.error().message;
  auto none = read_torch_state_dict(testing::torch_fixture("no_version.pt"));
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("no version record"), std::string::npos) << none.error().message;
}
TEST(TorchArchiveTest, Zip64Archive) { expect_matches_python("zip64"); }

TEST(TorchArchiveTest, ViewsShareOneStorage) {
  auto state = read_torch_state_dict(testing::torch_fixture("views.pt"));
  ASSERT_TRUE(state);
  EXPECT_EQ(state.value().storages.size(), 1u);
  EXPECT_EQ(state.value().tensors[1].strides, (std::vector<uint64_t>{1, 6}));  // base.t()
}

TEST(TorchArchiveTest, ParameterFlagsAreKept) {
  auto state = read_torch_state_dict(testing::torch_fixture("parameters.pt"));
  ASSERT_TRUE(state);
  EXPECT_TRUE(state.value().tensors[0].requires_grad);
  EXPECT_FALSE(state.value().tensors[1].requires_grad);
}

TEST(TorchArchiveTest, OsSystemGlobalIsRefusedWithOffset) {
  EXPECT_EQ(error_of("os_system.pt"),
            "data.pkl offset 2: global os.system is not allowed in a weights-only load (nothing is executed)");
}

TEST(TorchArchiveTest, BuiltinsEvalGlobalIsRefused) {
  EXPECT_NE(error_of("builtins_eval.pt").find("global builtins.eval is not allowed"), std::string::npos);
}

TEST(TorchArchiveTest, UnknownOpcodeIsRefusedWithOffset) {
  EXPECT_EQ(error_of("unknown_opcode.pt"), "data.pkl offset 3: opcode 0x49 is not supported in a weights-only load");
}

TEST(TorchArchiveTest, NonDictObjectIsRefused) {
  EXPECT_NE(error_of("not_a_dict.pt").find("is a list, not a state dict"), std::string::npos);
}

TEST(TorchArchiveTest, DeepNestingIsRefusedWithoutRecursion) {
  // model.pt: the entry is not a tensor; extra.pt: it is left out. Neither may overflow the stack freeing it.
  EXPECT_NE(error_of("deep_nesting.pt").find("entry \"x\" is a list, not a tensor"), std::string::npos);
  auto skipped = read_torch_state_dict(testing::torch_fixture("deep_nesting.pt"), NonTensorEntries::kSkip);
  ASSERT_TRUE(skipped) << skipped.error().describe();
  EXPECT_TRUE(skipped.value().tensors.empty());
}

TEST(TorchArchiveTest, ListHoldingItselfIsReadAndFreed) {
  auto skipped = read_torch_state_dict(testing::torch_fixture("self_cycle.pt"), NonTensorEntries::kSkip);
  ASSERT_TRUE(skipped) << skipped.error().describe();  // LeakSanitizer checks that it is freed
  EXPECT_TRUE(skipped.value().tensors.empty());
}

TEST(TorchArchiveTest, TooManyValuesAreRefused) {
  EXPECT_NE(error_of("too_many_values.pt").find("pickle builds more than 1000000 values"), std::string::npos);
}

TEST(TorchArchiveTest, TruncatedArchiveIsRefused) { EXPECT_NE(error_of("truncated.pt"), "OK"); }

TEST(TorchArchiveTest, MissingStorageIsRefused) {
  EXPECT_NE(error_of("missing_storage.pt").find("storage 0 is missing"), std::string::npos);
}

TEST(TorchArchiveTest, StorageShorterThanItsElementsIsRefused) {
  EXPECT_NE(error_of("short_storage.pt").find("storage 0 has 20 bytes, 6 elements need 24"), std::string::npos);
}

TEST(TorchArchiveTest, LegacyFormatIsRefusedClearly) {
  EXPECT_NE(error_of("legacy.pt").find("legacy non-zip format"), std::string::npos);
}

TEST(TorchArchiveTest, MissingFileIsBadInput) { EXPECT_NE(error_of("no-such-file.pt"), "OK"); }

}  // namespace
}  // namespace recis_convert
