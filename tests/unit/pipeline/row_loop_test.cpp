#include "recis_convert/pipeline/row_loop.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "recis_convert/transforms/job_transforms.h"

namespace recis_convert {
namespace {

// Two columns in memory: int64 ids 0, 1, 2... (times `id_step`), and float rows of `dim` holding row + 0.5.
class MemoryRows final : public RowReader {
 public:
  MemoryRows(uint64_t rows, uint64_t dim, int64_t id_step = 1) : dim_(dim) {
    for (uint64_t r = 0; r < rows; ++r) {
      ids_.push_back(static_cast<int64_t>(r) * id_step);
      for (uint64_t d = 0; d < dim; ++d) values_.push_back(static_cast<float>(r) + 0.5f);
    }
  }
  size_t columns() const override { return 2; }
  uint64_t row_bytes(size_t column) const override { return column == 0 ? 8 : dim_ * 4; }
  Status read(uint64_t first, uint64_t n, const std::vector<uint32_t>* kept, unsigned char* const* into) override {
    ++reads;
    if (first + n > ids_.size()) return bad_input("memory", "read past the end");
    for (uint64_t k = 0; k < (kept ? kept->size() : n); ++k) {
      const uint64_t r = first + (kept ? (*kept)[k] : k);
      std::memcpy(into[0] + k * 8, &ids_[r], 8);
      std::memcpy(into[1] + k * dim_ * 4, &values_[r * dim_], dim_ * 4);
    }
    return Ok{};
  }
  int reads = 0;

 private:
  uint64_t dim_;
  std::vector<int64_t> ids_;
  std::vector<float> values_;
};

// A RowFilter on `column` that keeps the rows whose first 8 bytes (an id, or two floats) `keeps`.
template <typename T>
RowFilter filter_on(size_t column, uint64_t row_bytes, bool (*keeps)(T)) {
  return RowFilter{column, [row_bytes, keeps](const unsigned char* rows, uint64_t n, unsigned char* keep) {
                     uint64_t kept = 0;
                     for (uint64_t r = 0; r < n; ++r) {
                       T value;
                       std::memcpy(&value, rows + r * row_bytes, sizeof value);
                       kept += keep[r] = keeps(value) ? 1 : 0;
                     }
                     return kept;
                   }};
}

std::vector<int64_t> ids_of(const RowChunk& chunk, size_t slot) {
  std::vector<int64_t> ids(chunk.rows);
  std::memcpy(ids.data(), chunk.slots[slot], chunk.rows * 8);
  return ids;
}

TEST(RowLoopTest, EveryRowPassesInChunksThatFitTheBuffer) {
  MemoryRows reader(100, 4);
  std::vector<char> buffer(10 * (8 + 16));  // ten rows of both columns
  RowLoop loop(buffer);
  RowRun run;
  run.first = 5;
  run.end = 100;
  run.slots = {OutputSlot{0, nullptr}};
  std::vector<int64_t> seen;
  auto stopped = loop.run(reader, run, [&](const RowChunk& chunk) -> Status {
    EXPECT_LE(chunk.rows, 10u);
    EXPECT_EQ(chunk.rows, chunk.source_rows);
    EXPECT_EQ(ids_of(chunk, 0).front(), static_cast<int64_t>(chunk.first));
    for (int64_t id : ids_of(chunk, 0)) seen.push_back(id);
    return Ok{};
  });
  ASSERT_TRUE(stopped) << stopped.error().describe();
  EXPECT_EQ(stopped.value(), 100u);
  ASSERT_EQ(seen.size(), 95u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], static_cast<int64_t>(i + 5));
  EXPECT_EQ(buffer.size(), 10u * 24);  // lent, not grown
}

// A chunk's bytes capped below the buffer (the copy engine's cache-sized window): chunks of at most that many rows,
// every row once, in order.
TEST(RowLoopTest, ChunkBytesCapsAChunkBelowTheBuffer) {
  MemoryRows reader(100, 4);
  std::vector<char> buffer(1 << 16);
  RowLoop loop(buffer);
  RowRun run;
  run.end = 100;
  run.slots = {OutputSlot{0, nullptr}};
  run.chunk_bytes = 7 * (8 + 16);  // seven rows of both columns
  std::vector<int64_t> seen;
  int chunks = 0;
  auto stopped = loop.run(reader, run, [&](const RowChunk& chunk) -> Status {
    EXPECT_LE(chunk.rows, 7u);
    ++chunks;
    for (int64_t id : ids_of(chunk, 0)) seen.push_back(id);
    return Ok{};
  });
  ASSERT_TRUE(stopped) << stopped.error().describe();
  EXPECT_EQ(chunks, 15);  // 14 of seven rows, then two
  ASSERT_EQ(seen.size(), 100u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], static_cast<int64_t>(i));
}

TEST(RowLoopTest, AFilterKeepsTheSameRowsInEveryColumn) {
  MemoryRows reader(50, 2);
  std::vector<char> buffer(1 << 12);
  RowLoop loop(buffer);
  const RowFilter odd_rows = filter_on<float>(1, 8, [](float v) { return static_cast<int>(v) % 2 == 1; });
  RowRun run;
  run.end = 50;
  run.slots = {OutputSlot{0, nullptr}, OutputSlot{1, nullptr}};
  run.filter = &odd_rows;
  uint64_t rows = 0;
  auto stopped = loop.run(reader, run, [&](const RowChunk& chunk) -> Status {
    for (uint64_t r = 0; r < chunk.rows; ++r) {
      int64_t id;
      float value;
      std::memcpy(&id, chunk.slots[0] + r * 8, 8);
      std::memcpy(&value, chunk.slots[1] + r * 8, 4);
      EXPECT_EQ(id % 2, 1);
      EXPECT_EQ(value, static_cast<float>(id) + 0.5f);
    }
    rows += chunk.rows;
    return Ok{};
  });
  ASSERT_TRUE(stopped);
  EXPECT_EQ(rows, 25u);
}

TEST(RowLoopTest, RoutedRowsCarryTheirTargetPartAndRewrittenRowsTheirNewLayout) {
  MemoryRows reader(40, 8, 4099);  // ids far apart, over many slices
  const RowTransformChain chain = make_row_transforms(false, {}, EmbeddingDTypes{ServingDType::kFp16, {}});
  auto slot = chain.prepare({"t", "embedding", "t.embedding/part_0_1", "f"}, RowLayout::of_tensor(DType::kF32, "F32", {40, 8}));
  ASSERT_TRUE(slot && slot.value().rewritten());
  const PartOfIdTable part_of(5);
  std::vector<char> buffer(1 << 10);
  RowLoop loop(buffer);
  RowRun run;
  run.end = 40;
  run.slots = {OutputSlot{1, &slot.value()}};
  run.id_column = 0;
  run.route = &part_of;
  run.scratch_row_bytes = 16;
  uint64_t rows = 0;
  auto stopped = loop.run(reader, run, [&](const RowChunk& chunk) -> Status {
    EXPECT_NE(chunk.scratch, nullptr);
    for (uint64_t r = 0; r < chunk.rows; ++r) {
      EXPECT_EQ(chunk.targets[r], part_of(static_cast<int64_t>(chunk.first + r) * 4099));
      uint16_t half;
      std::memcpy(&half, chunk.slots[0] + r * 16, 2);
      EXPECT_NE(half, 0u);  // row + 0.5 is never zero
    }
    rows += chunk.rows;
    return Ok{};
  });
  ASSERT_TRUE(stopped) << stopped.error().describe();
  EXPECT_EQ(rows, 40u);
}

TEST(RowLoopTest, ACountPassCountsTheKeptRowsOfEachTarget) {
  MemoryRows reader(300, 2, 4099);
  std::vector<char> buffer(64 * 16);  // many chunks
  RowLoop loop(buffer);
  const RowFilter odd_rows = filter_on<float>(1, 8, [](float v) { return static_cast<int>(v) % 2 == 1; });
  const PartOfIdTable part_of(3);
  RowRun run;
  run.first = 10;
  run.end = 300;
  run.filter = &odd_rows;
  run.id_column = 0;
  run.route = &part_of;
  auto counted = loop.count_kept_rows(reader, run, 3);
  ASSERT_TRUE(counted) << counted.error().describe();
  std::vector<uint64_t> want(3, 0);
  for (int64_t r = 11; r < 300; r += 2) ++want[part_of(r * 4099)];
  EXPECT_EQ(counted.value().kept, 145u);
  EXPECT_EQ(counted.value().per_target, want);
  run.route = nullptr;  // without routing: only the count
  auto unrouted = loop.count_kept_rows(reader, run, 0);
  ASSERT_TRUE(unrouted);
  EXPECT_EQ(unrouted.value().kept, 145u);
  EXPECT_TRUE(unrouted.value().per_target.empty());
}

TEST(RowLoopTest, OneChunkTakesTheKeptRowsWantedAndSaysWhereItStopped) {
  MemoryRows reader(100, 1);
  std::vector<char> buffer(64);  // smaller than the chunk: it grows for it
  RowLoop loop(buffer);
  const RowFilter every_third = filter_on<int64_t>(0, 8, [](int64_t id) { return id % 3 == 0; });
  RowRun run;
  run.first = 10;
  run.end = 100;
  run.slots = {OutputSlot{0, nullptr}};
  run.filter = &every_third;
  run.kept_at_most = 7;
  run.one_chunk = true;
  int chunks = 0;
  auto stopped = loop.run(reader, run, [&](const RowChunk& chunk) -> Status {
    ++chunks;
    EXPECT_EQ(ids_of(chunk, 0), (std::vector<int64_t>{12, 15, 18, 21, 24, 27, 30}));
    return Ok{};
  });
  ASSERT_TRUE(stopped);
  EXPECT_EQ(chunks, 1);
  EXPECT_EQ(stopped.value(), 31u);  // the next piece goes on from row 31
}

TEST(RowLoopTest, AReadFailureAndAWriterFailureStopTheRun) {
  MemoryRows reader(10, 1);
  std::vector<char> buffer(1 << 10);
  RowLoop loop(buffer);
  RowRun past_the_end;
  past_the_end.end = 11;
  past_the_end.slots = {OutputSlot{0, nullptr}};
  auto read = loop.run(reader, past_the_end, [](const RowChunk&) -> Status { return Ok{}; });
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error().code, ExitCode::kBadInput);
  RowRun run;
  run.end = 10;
  run.slots = {OutputSlot{0, nullptr}};
  auto written = loop.run(reader, run, [](const RowChunk&) -> Status { return output_error("out", "disk full"); });
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().code, ExitCode::kOutput);
}

}  // namespace
}  // namespace recis_convert
