// Chunks located in the data files torch 2.6 wrote (tests/fixtures/dcp-torch2.6/model), stitched into whole tables
// and compared byte for byte with torch's own load of them (its truth/, written by dcp_tools.py truth --raw).
#include "recis_convert/formats/dcp_item.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "recis_convert/common/file_io.h"
#include "recis_convert/sources/dcp_checkpoint.h"
#include "test_files.h"

namespace recis_convert {
namespace {

const std::string kFixture = std::string(RECIS_SOURCE_DIR) + "/tests/fixtures/dcp-torch2.6";

// The fixture's tables by name, as the DCP source names them (sources/dcp_checkpoint.h).
std::map<std::string, DcpTensor> tables() {
  auto location = locate_dcp_checkpoint(kFixture + "/model");
  auto md = location ? read_dcp_metadata(location.value().dcp_dir) : Result<DcpMetadata>(location.error());
  EXPECT_TRUE(md);
  auto described = describe_dcp_checkpoint(location.value(), std::move(md).value());
  EXPECT_TRUE(described);
  std::map<std::string, DcpTensor> out;
  for (const auto& t : described.value().tables) out[t.name] = t.weight;
  return out;
}

uint64_t size_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// The whole table from its chunks, each located and read by range, placed row by row.
Result<std::string> stitch(const std::string& dir, const DcpTensor& t) {
  const uint64_t element = dtype_bits(t.dtype) / 8, row = t.shape[1] * element;
  std::string out(t.shape[0] * row, '\0');
  for (const DcpChunk& c : t.chunks) {
    const std::string path = dir + "/" + c.file;
    auto opened = open_input_file(path);
    if (!opened) return opened.error();
    auto data = locate_dcp_chunk(opened.value().get(), size_of(path), path, t, c);
    if (!data) return data.error();
    std::string bytes(data.value().bytes, '\0');
    auto read = read_exact(opened.value().get(), data.value().offset, bytes.size(), bytes.data(), path, "chunk");
    if (!read) return read.error();
    const uint64_t piece = c.sizes[1] * element;
    for (uint64_t r = 0; r < c.sizes[0]; ++r) {
      bytes.copy(out.data() + (c.offsets[0] + r) * row + c.offsets[1] * element, piece, r * piece);
    }
  }
  return out;
}

TEST(DcpItemTest, EveryLayoutStitchesToWhatTorchLoads) {
  const auto all = tables();
  ASSERT_EQ(all.size(), 5u);  // user_id, item_id, cate, seq_item, zch_user: not the dense decoy
  for (const auto& [name, t] : all) {
    auto table = stitch(kFixture + "/model", t);
    ASSERT_TRUE(table) << table.error().describe();
    EXPECT_TRUE(table.value() == testing::read_file(kFixture + "/truth/" + name + ".bin")) << name;
  }
}

TEST(DcpItemTest, ACutDataFileIsRefusedNamingTheTensor) {
  testing::TempDir dir;
  const DcpTensor user = tables().at("user_id");
  const std::string path = dir.file("__1_0.distcp");
  const std::string bytes = testing::read_file(kFixture + "/model/__1_0.distcp");
  testing::write_file(path, bytes.substr(0, 1000));  // inside its first item
  auto opened = open_input_file(path);
  ASSERT_TRUE(opened);
  const DcpChunk& second = user.chunks[1];  // rank 1's
  auto data = locate_dcp_chunk(opened.value().get(), size_of(path), path, user, second);
  ASSERT_FALSE(data);
  EXPECT_NE(data.error().describe().find("user_id.weight\", chunk at [334,0]: its item"), std::string::npos);
  EXPECT_NE(data.error().describe().find("runs past the end of the file"), std::string::npos);
}

TEST(DcpItemTest, AnItemHoldingAnotherTensorThanTheMetadataSaysIsRefused) {
  DcpTensor user = tables().at("user_id");
  user.dtype = DType::kF16;
  const std::string path = kFixture + "/model/" + user.chunks[0].file;
  auto opened = open_input_file(path);
  ASSERT_TRUE(opened);
  auto data = locate_dcp_chunk(opened.value().get(), size_of(path), path, user, user.chunks[0]);
  ASSERT_FALSE(data);
  EXPECT_NE(data.error().describe().find("its item holds a float32 tensor of size [334,16], the metadata says "
                                         "float16 [334,16]"),
            std::string::npos)
      << data.error().describe();
}

TEST(DcpItemTest, AByteRangeThatIsNotAnItemIsRefused) {
  DcpTensor user = tables().at("user_id");
  DcpChunk shifted = user.chunks[0];
  shifted.item_offset += 7;  // into the middle of the item
  shifted.item_length -= 7;
  const std::string path = kFixture + "/model/" + shifted.file;
  auto opened = open_input_file(path);
  ASSERT_TRUE(opened);
  auto data = locate_dcp_chunk(opened.value().get(), size_of(path), path, user, shifted);
  ASSERT_FALSE(data);
  EXPECT_NE(data.error().describe().find("not a plain torch.save item"), std::string::npos) << data.error().describe();
}

}  // namespace
}  // namespace recis_convert
