#include "recis_convert/dense/weight_fill.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/torch_archive.h"
#include "torch_fixtures.h"

namespace recis_convert {
namespace {

std::string scratch(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/weight_fill_test_" + std::to_string(::getpid()) + "_" + name;
}

// The weights of the model.pt-like file at `path` into `arch`.
Result<WeightFill> fill_from(const std::string& arch, const std::string& path, const std::string& dense_name,
                             const std::string& out) {
  auto weights = open_model_pt(path);
  if (!weights) return weights.error();
  return fill_dense_weights(arch, *weights.value(), dense_name, out);
}

TEST(WeightFillTest, EveryTensorGetsTheCheckpointsBytesAndEveryOtherRecordIsCopied) {
  const std::string arch = testing::torch_fixture("scripted.pt");
  const std::string weights = testing::torch_fixture("scripted_weights.pt");
  const std::string out = scratch("filled.pt");
  auto fill = fill_from(arch, weights, "net", out);
  ASSERT_TRUE(fill) << fill.error().describe();
  EXPECT_EQ(fill.value().tensors, 9u);  // 2 x (weight, bias), bn weight, bias, running_mean, running_var, count
  ASSERT_EQ(fill.value().warnings.size(), 1u);
  EXPECT_NE(fill.value().warnings[0].find("net.unused"), std::string::npos);

  auto before = read_torchscript_tensors(arch);
  auto after = read_torchscript_tensors(out);
  auto state = read_torch_state_dict(weights);
  ASSERT_TRUE(before && after && state);
  ASSERT_EQ(after.value().tensors.size(), before.value().tensors.size());
  std::map<std::string, const TorchTensor*> saved;
  for (const auto& t : state.value().tensors) saved[t.name] = &t;
  for (size_t i = 0; i < after.value().tensors.size(); ++i) {
    const TorchTensor& t = after.value().tensors[i];
    EXPECT_EQ(t.name, before.value().tensors[i].name);
    auto got = read_tensor_data(after.value(), t);
    auto want = read_tensor_data(state.value(), *saved.at("net." + t.name));
    ASSERT_TRUE(got && want);
    EXPECT_EQ(got.value(), want.value()) << t.name;
  }
  EXPECT_TRUE(saved.count("net.bn.num_batches_tracked"));
  // the same records, code (deflated) copied as it was, every one starting on a 64-byte boundary
  const ZipIndex& a = before.value().zip;
  const ZipIndex& b = after.value().zip;
  ASSERT_EQ(a.entries.size(), b.entries.size());
  auto in = open_input_file(arch);
  auto copy = open_input_file(out);
  ASSERT_TRUE(in && copy);
  for (const auto& [name, entry] : a.entries) {
    ASSERT_TRUE(b.entries.count(name)) << name;
    const ZipEntry& written = b.entries.at(name);
    EXPECT_EQ(written.data_offset % 64, 0u) << name;
    if (name.find("/data/") != std::string::npos) continue;
    EXPECT_EQ(written.method, entry.method) << name;
    auto x = read_zip_raw(in.value().get(), a, entry, 1 << 20);
    auto y = read_zip_raw(copy.value().get(), b, written, 1 << 20);
    ASSERT_TRUE(x && y);
    EXPECT_EQ(x.value(), y.value()) << name;
  }
  ::unlink(out.c_str());
}

TEST(WeightFillTest, MissingAndMismatchedWeightsAreListedAndTiedOnesRefused) {
  const std::string out = scratch("refused.pt");
  // scripted.pt's checkpoint under another prefix: every weight is missing
  auto missing = fill_from(testing::torch_fixture("scripted.pt"), testing::torch_fixture("scripted_weights.pt"), "other",
                           out);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ExitCode::kBadInput);
  EXPECT_NE(missing.error().message.find("missing other.mlp.0.weight; missing other.mlp.0.bias"), std::string::npos)
      << missing.error().message;
  auto tied = fill_from(testing::torch_fixture("tied.pt"), testing::torch_fixture("tied_weights.pt"), "net", out);
  ASSERT_FALSE(tied);
  EXPECT_NE(tied.error().message.find("does not own its storage"), std::string::npos) << tied.error().message;
  ::unlink(out.c_str());
}

TEST(WeightFillTest, AStateDictIsNoTorchScriptArchive) {
  auto read = read_torchscript_tensors(testing::torch_fixture("scripted_weights.pt"));
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().message.find("is not a TorchScript file"), std::string::npos) << read.error().message;
}

}  // namespace
}  // namespace recis_convert
