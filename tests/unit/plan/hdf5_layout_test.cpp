#include "message_round_trip.h"
#include "recis_convert/mpi/job_messages.h"
#include "recis_convert/plan/hdf5_layout.h"

#include <gtest/gtest.h>

namespace recis_convert {
namespace {

SourceTensor sparse(const std::string& child, const std::string& slot, const std::string& slice, int part_rank,
                    std::vector<uint64_t> shape, const std::string& dtype, int owner, uint64_t offset) {
  SourceTensor t;
  t.key = child + "." + slot + "/part_" + std::to_string(part_rank) + "_2";
  t.sparse = true;
  t.child = child;
  t.slot = slot;
  t.slice = slice;
  t.part_rank = part_rank;
  t.shape = std::move(shape);
  t.dtype = dtype;
  t.file = "f" + std::to_string(owner);
  t.offset = offset;
  t.owner = owner;
  return t;
}

std::vector<SourceTensor> two_part_table() {
  // part 1 (slice 32768..) listed first on purpose: parts are ordered by slice, not by arrival
  return {sparse("u", "embedding", "32768@65536@65536", 1, {2, 4}, "F32", 1, 1000),
          sparse("u", "id", "32768@65536@65536", 1, {2}, "I64", 0, 200),
          sparse("u", "id", "00000@32768@65536", 0, {3}, "I64", 0, 100),
          sparse("u", "embedding", "00000@32768@65536", 0, {3, 4}, "F32", 1, 500)};
}

TEST(Hdf5LayoutTest, AnEvictedPartHoldsItsKeptRowsInSelectedPieces) {
  std::vector<SourceTensor> tensors = two_part_table();
  for (SourceTensor& t : tensors) {
    if (t.part_rank == 0) t.kept_rows = 1;  // part 0 keeps one of its three rows
  }
  auto plan = lay_out_hdf5(tensors, 1 << 20, "ckpt");
  ASSERT_TRUE(plan) << plan.error().describe();
  const TableLayout& t = plan.value().tables[0];
  EXPECT_EQ(t.rows, 3u);
  EXPECT_EQ(t.parts[0].rows, 1u);
  EXPECT_EQ(t.parts[1].first_row, 1u);
  const std::vector<WritePiece>& pieces = t.slots[1].pieces;  // embedding
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_TRUE(pieces[0].selected);
  EXPECT_EQ(pieces[0].rows, 1u);
  EXPECT_FALSE(pieces[1].selected);
  EXPECT_EQ(t.slots[1].dims, (std::vector<uint64_t>{3, 4}));
  auto back = testing::round_trip(tensors);
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value()[2].kept_rows, 1);
}

TEST(Hdf5LayoutTest, ConcatenatesPartsInSliceOrder) {
  auto plan = lay_out_hdf5(two_part_table(), 1 << 20, "ckpt");
  ASSERT_TRUE(plan) << plan.error().describe();
  ASSERT_EQ(plan.value().tables.size(), 1u);
  const TableLayout& t = plan.value().tables[0];
  EXPECT_EQ(t.rows, 5u);
  EXPECT_EQ(t.embedding_dim, 4u);
  ASSERT_EQ(t.parts.size(), 2u);
  EXPECT_EQ(t.parts[0].slice_begin, 0u);
  EXPECT_EQ(t.parts[0].rows, 3u);
  EXPECT_EQ(t.parts[1].first_row, 3u);
  EXPECT_EQ(t.parts[1].slice_end, 65536u);
  ASSERT_EQ(t.slots.size(), 2u);
  EXPECT_EQ(t.slots[0].path, "/sparse/u/id");
  EXPECT_EQ(t.slots[1].dims, (std::vector<uint64_t>{5, 4}));
  EXPECT_EQ(t.slots[1].row_bytes, 16u);
  ASSERT_EQ(t.slots[1].pieces.size(), 2u);
  EXPECT_EQ(t.slots[1].pieces[1].first_row, 3u);
  EXPECT_EQ(t.slots[1].pieces[1].source_offset, 1000u);
}

TEST(Hdf5LayoutTest, PiecesRespectTheBufferAndRoundsCoverTheBusiestRank) {
  auto plan = lay_out_hdf5(two_part_table(), 32, "ckpt");  // two 16-byte rows per piece
  ASSERT_TRUE(plan);
  const DatasetLayout& embedding = plan.value().tables[0].slots[1];
  ASSERT_EQ(embedding.pieces.size(), 3u);  // 3 rows -> 2 + 1, 2 rows -> 2
  EXPECT_EQ(embedding.pieces[1].rows, 1u);
  EXPECT_EQ(embedding.pieces[1].source_offset, 500u + 32);
  EXPECT_EQ(embedding.rounds(2), 3u);   // rank 1 owns all three
  EXPECT_TRUE(embedding.pieces_of(0).empty());
}

TEST(Hdf5LayoutTest, MissingSlotInOnePartIsBadInput) {
  auto tensors = two_part_table();
  tensors.erase(tensors.begin());  // part 1 loses its embedding
  auto plan = lay_out_hdf5(tensors, 1 << 20, "ckpt");
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code, ExitCode::kBadInput);
  EXPECT_NE(plan.error().message.find("has no \"embedding\""), std::string::npos);
}

// "/sparse/us/er/id" would be groups the layout never made: bad input (exit 3), not an HDF5 failure (exit 4).
TEST(Hdf5LayoutTest, TableNameThatIsNotOneLinkIsBadInput) {
  auto tensors = two_part_table();
  for (SourceTensor& t : tensors) t.child = "us/er";
  auto plan = lay_out_hdf5(tensors, 1 << 20, "ckpt");
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code, ExitCode::kBadInput);
  EXPECT_NE(plan.error().message.find("table \"us/er\" slot \"embedding\" cannot be stored in HDF5"), std::string::npos)
      << plan.error().message;
}

TEST(Hdf5LayoutTest, RowCountDifferentFromIdIsBadInput) {
  auto tensors = two_part_table();
  tensors[0].shape = {7, 4};
  auto plan = lay_out_hdf5(tensors, 1 << 20, "ckpt");
  ASSERT_FALSE(plan);
  EXPECT_NE(plan.error().message.find("rows of its id"), std::string::npos);
}

TEST(Hdf5LayoutTest, DtypeDisagreementBetweenPartsIsBadInput) {
  auto tensors = two_part_table();
  tensors[0].dtype = "F16";
  EXPECT_FALSE(lay_out_hdf5(tensors, 1 << 20, "ckpt"));
}

TEST(Hdf5LayoutTest, OptimizerScalarsAreOnePieceEach) {
  SourceTensor step;
  step.key = "sparse_adamw_step^ ";
  step.dtype = "I64";
  step.shape = {1};
  step.owner = 1;
  step.offset = 1004;  // not a multiple of its 8 bytes: the piece reads from the tensor's own offset
  SourceTensor beta = step;
  beta.key = "sparse_adamw_beta1^ ";
  beta.dtype = "F32";
  beta.shape = {};
  auto plan = lay_out_hdf5({step, beta}, 1 << 20, "ckpt");
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan.value().optimizer.size(), 2u);
  EXPECT_EQ(plan.value().optimizer[0].path, "/optimizer/sparse_adamw_beta1");  // sorted by name
  EXPECT_EQ(plan.value().optimizer[0].row_bytes, 4u);
  ASSERT_EQ(plan.value().optimizer[1].pieces.size(), 1u);
  const WritePiece& piece = plan.value().optimizer[1].pieces[0];
  EXPECT_EQ(piece.tensor_offset, 1004u);  // row 0 of the tensor at its offset, not row 125 of the file
  EXPECT_EQ(piece.source_offset, 1004u);
  EXPECT_EQ(piece.tensor, "sparse_adamw_step^ ");
}

TEST(Hdf5LayoutTest, SummariesSurviveTheMessageRoundTrip) {
  auto back = testing::round_trip(two_part_table());
  ASSERT_TRUE(back);
  ASSERT_EQ(back.value().size(), 4u);
  EXPECT_EQ(back.value()[3].slice, "00000@32768@65536");
  EXPECT_EQ(back.value()[3].offset, 500u);
  EXPECT_EQ(back.value()[0].shape, (std::vector<uint64_t>{2, 4}));
}

}  // namespace
}  // namespace recis_convert

namespace recis_convert {
namespace {

// A huge file's pieces go to every rank, largest first to the least loaded; other files' pieces and selected
// pieces stay with their owners; bytes_of_rank adds up what each rank then reads.
TEST(Hdf5LayoutSpreadTest, AHugeFilesPiecesGoToEveryRank) {
  Hdf5Layout plan;
  plan.tables.emplace_back();
  DatasetLayout d;
  d.source_row_bytes = 2;
  d.row_bytes = 1;
  for (int i = 0; i < 10; ++i) {
    WritePiece p;
    p.file = "big";
    p.rows = 100;
    d.pieces.push_back(p);
  }
  WritePiece small;
  small.owner = 1;
  small.file = "small";
  small.rows = 100;
  d.pieces.push_back(small);
  WritePiece selected;
  selected.file = "big";
  selected.rows = 50;
  selected.selected = true;
  d.pieces.push_back(selected);
  plan.tables[0].slots.push_back(d);
  spread_large_files(plan, {"big"}, 3);
  const auto& pieces = plan.tables[0].slots[0].pieces;
  EXPECT_EQ(pieces[10].owner, 1);  // another file's
  EXPECT_EQ(pieces[11].owner, 0);  // selected rows are read in order by their owner
  uint64_t least = UINT64_MAX, most = 0, total = 0;
  for (int rank = 0; rank < 3; ++rank) {
    const PieceBytes b = bytes_of_rank(plan, rank);
    EXPECT_EQ(b.written * 2, b.read);
    least = std::min(least, b.read);
    most = std::max(most, b.read);
    total += b.read;
  }
  EXPECT_EQ(total, (10 * 100 + 100 + 50) * 2u);
  EXPECT_LE(most - least, 200u);  // one piece
  spread_large_files(plan, {}, 3);  // nothing large: nothing moves
  EXPECT_EQ(plan.tables[0].slots[0].pieces[10].owner, 1);
}

}  // namespace
}  // namespace recis_convert
