#include "recis_convert/mpi/messages.h"

#include <gtest/gtest.h>

#include "recis_convert/mpi/comm.h"
#include "recis_convert/mpi/job_messages.h"

namespace recis_convert {
namespace {

// A one-rank communicator whose broadcasts deliver `garbage` instead of what was sent, and whose gathers deliver
// it as a second rank's message (rank 0's own value never travels).
class GarblingComm : public Comm {
 public:
  explicit GarblingComm(std::string garbage) : garbage_(std::move(garbage)) {}
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string broadcast_from_root(const std::string&) override { return garbage_; }
  std::vector<std::string> gather_to_root(const std::string&) override { return {"", garbage_}; }
  std::vector<std::string> allgather(const std::string&) override { return {garbage_}; }
  std::string scatter_from_root(const std::function<std::string(int)>&) override { return garbage_; }
  Agreement agree_on_status(int status) override { return {status, 0}; }
  void announce_failure() override {}
  bool peer_failed() override { return false; }
  void post_progress(const ProgressCount&) override {}
  void receive_progress(std::vector<ProgressCount>&) override {}
  std::string host() const override { return "test"; }
  [[noreturn]] void abort(int code) const override { std::_Exit(code); }

 private:
  std::string garbage_;
};

// Two ranks seen from rank 0: the gathers deliver `second` as rank 1's message; broadcasts deliver what is sent.
class SecondRankComm : public GarblingComm {
 public:
  explicit SecondRankComm(std::string second) : GarblingComm(""), second_(std::move(second)) {}
  int size() const override { return 2; }
  std::string broadcast_from_root(const std::string& text) override { return text; }
  std::vector<std::string> gather_to_root(const std::string&) override { return {"", second_}; }

 private:
  std::string second_;
};

TEST(MessagesTest, AgreeOnFirstErrorGivesEveryRankTheFirstFailureInRankOrder) {
  const Error second = bad_input("/delta/model-0.safetensors", "cut short");
  SecondRankComm fails_second(messages_detail::encode(std::optional<Error>(second)));
  auto got = agree_on_first_error(fails_second, Ok{}, "test");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().describe(), second.describe());
  got = agree_on_first_error(fails_second, output_error("/out", "full"), "test");  // rank 0's comes first
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ExitCode::kOutput);
  SecondRankComm both_fine(messages_detail::encode(std::optional<Error>()));
  EXPECT_TRUE(agree_on_first_error(both_fine, Ok{}, "test"));
}

TEST(MessagesTest, BroadcastResultCarriesTheValue) {
  SerialComm comm;
  auto got = broadcast_result<std::vector<std::string>>(
      comm, []() -> Result<std::vector<std::string>> { return std::vector<std::string>{"a", "b"}; }, "test");
  ASSERT_TRUE(got);
  EXPECT_EQ(got.value(), (std::vector<std::string>{"a", "b"}));
}

TEST(MessagesTest, BroadcastResultCarriesTheErrorWithItsCodeAndFile) {
  SerialComm comm;
  auto got = broadcast_result<int>(comm, []() -> Result<int> { return bad_input("/ckpt/index", "is not JSON"); },
                                   "test");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ExitCode::kBadInput);
  EXPECT_EQ(got.error().describe(), "/ckpt/index: is not JSON");
}

TEST(MessagesTest, ScatterGivesEachRankItsOwnValue) {
  SerialComm comm;
  auto got = scatter_encoded_from_root<BlockCatalog>(
      comm,
      [](int rank) {
        const std::string key = "rank " + std::to_string(rank);  // the builder reads it at finish()
        BlockCatalog::Builder blocks;
        blocks.add(key, 0, "");
        return std::move(blocks).finish().encode();
      },
      "test");
  ASSERT_TRUE(got);
  ASSERT_EQ(got.value().size(), 1u);
  EXPECT_EQ(got.value()[0].key, "rank 0");
}

TEST(MessagesTest, ABinaryEncodedValueThatDoesNotDecodeIsAnInternalError) {
  GarblingComm comm("not a catalog");
  auto got = scatter_encoded_from_root<BlockCatalog>(comm, [](int) { return BlockCatalog().encode(); },
                                                     "block-share");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ExitCode::kInternal);
  EXPECT_NE(got.error().message.find("corrupt block-share message"), std::string::npos);
}

TEST(MessagesTest, OptionalFieldsTravelAsNullOrValue) {
  SerialComm comm;
  std::optional<Error> none, some = output_error("/out", "full");
  auto a = broadcast_value(comm, none, "test");
  auto b = broadcast_value(comm, some, "test");
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(a.value().has_value());
  ASSERT_TRUE(b.value().has_value());
  EXPECT_EQ(b.value()->code, ExitCode::kOutput);
}

TEST(MessagesTest, AMessageThatDoesNotDecodeIsAnInternalErrorNamingIt) {
  GarblingComm comm("{\"value\": \"not a number\"}");
  auto got = broadcast_value(comm, 7, "verdict");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ExitCode::kInternal);
  EXPECT_NE(got.error().message.find("corrupt verdict message"), std::string::npos) << got.error().message;
  GarblingComm truncated("{\"val");
  auto gathered = gather_to_root(truncated, 7, "rank-report");
  ASSERT_FALSE(gathered);
  EXPECT_NE(gathered.error().message.find("corrupt rank-report message"), std::string::npos);
}

TEST(MessagesTest, GatherAndAllgatherIndexByRank) {
  SerialComm comm;
  auto gathered = gather_to_root(comm, std::string("mine"), "test");
  auto all = allgather(comm, 42, "test");
  ASSERT_TRUE(gathered && all);
  EXPECT_EQ(gathered.value(), (std::vector<std::string>{"mine"}));
  EXPECT_EQ(all.value(), (std::vector<int>{42}));
}

TEST(MessagesTest, TensorInfoKeepsItsSpellingAndDtype) {
  SerialComm comm;
  TensorInfo t{"user.id/part_0_1", DType::kBool, "bool", {3}, 8, 11};
  auto back = broadcast_value(comm, t, "test");
  ASSERT_TRUE(back);
  EXPECT_EQ(back.value().dtype, DType::kBool);
  EXPECT_EQ(back.value().dtype_spelling, "bool");
  EXPECT_EQ(back.value().begin, 8u);
  EXPECT_EQ(back.value().end, 11u);
}

TEST(MessagesTest, PlannedPartsKeepTheirOptionalColumns) {
  SerialComm comm;
  PlannedPart p;
  p.part = PartId{"user", "part_1_3"};
  p.decision.embedding = DecisionColumn{"/c/f", "user.embedding/part_1_3", 128, 10, DType::kBF16, 16};
  p.decision.l2_below = 0.25f;
  p.counter = 2;
  auto back = broadcast_value(comm, std::vector<PlannedPart>{p}, "test");
  ASSERT_TRUE(back) << back.error().describe();
  ASSERT_EQ(back.value().size(), 1u);
  const PlannedPart& q = back.value()[0];
  EXPECT_EQ(q.part, p.part);
  EXPECT_FALSE(q.decision.step_filter);
  ASSERT_TRUE(q.decision.embedding);
  EXPECT_EQ(q.decision.embedding->dtype, DType::kBF16);
  EXPECT_EQ(q.decision.embedding->offset, 128u);
  EXPECT_EQ(q.decision.l2_below, 0.25f);
  EXPECT_EQ(q.counter, 2);
}

TEST(MessagesTest, AQuantizationLedgerTravelsExactly) {
  SerialComm comm;
  QuantizationLedger ledger;
  ledger.note_table("user", ServingDType::kInt4, 8, "F32");
  const float x[] = {1, 2, 3, 4}, y[] = {1.1f, 2, 3, 4.5f};
  ledger.tables["user"].error.add_row(x, y, 4);
  auto back = broadcast_value(comm, ledger, "test");
  ASSERT_TRUE(back) << back.error().describe();
  const TableQuantization& t = back.value().tables.at("user");
  EXPECT_EQ(t.dtype, ServingDType::kInt4);
  EXPECT_EQ(t.source_dtype(), "F32");
  EXPECT_TRUE(t.error.abs_sum == ledger.tables["user"].error.abs_sum);
  EXPECT_EQ(t.error.figures().rmse, ledger.tables["user"].error.figures().rmse);
}

}  // namespace
}  // namespace recis_convert
