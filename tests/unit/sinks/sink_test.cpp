#include "recis_convert/sinks/sink.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "recis_convert/sinks/checkpoint_files_sink.h"
#include "recis_convert/sinks/hdf5_sink.h"
#include "recis_convert/sinks/row_tables_sink.h"
#include "recis_convert/sinks/resharded_files_sink.h"

namespace recis_convert {
namespace {

SourceDescription hugectr_source() {
  SourceDescription s;
  s.kind = SourceKind::kHugectr;
  s.row_tables.emplace();
  s.row_tables->tables.resize(2);
  s.row_tables->tables[0].file = "a.safetensors";
  s.row_tables->tables[1].file = "b.safetensors";
  return s;
}

template <class Kind>
bool is(const std::unique_ptr<Sink>& sink) {
  return dynamic_cast<const Kind*>(sink.get()) != nullptr;
}

TEST(SinkTest, TheOptionsAndTheSourceChooseOneSink) {
  JobOptions o;
  const SourceDescription checkpoint;
  EXPECT_TRUE(is<CheckpointFilesSink>(make_sink(o, checkpoint)));
  EXPECT_TRUE(is<RowTablesSink>(make_sink(o, hugectr_source())));
  o.reshard = 3;
  EXPECT_TRUE(is<ReshardedFilesSink>(make_sink(o, checkpoint)));
  EXPECT_TRUE(is<RowTablesSink>(make_sink(o, hugectr_source())));  // its tables' rows, resharded
  o.format = ExportFormat::kHdf5;
  EXPECT_TRUE(is<Hdf5Sink>(make_sink(o, checkpoint)));
  EXPECT_TRUE(is<Hdf5Sink>(make_sink(o, hugectr_source())));
}

// The files every rank checksums a share of after the barrier: those all ranks wrote into, none in a dry run.
TEST(SinkTest, SharedFilesAreTheFilesAllRanksWroteInto) {
  JobOptions o;
  const SourceDescription checkpoint, hugectr = hugectr_source();
  const RowTransformChain transforms;
  const std::vector<size_t> mine;
  const std::vector<WorkItem> pieces;
  ReshardStage reshard;
  reshard.layout.emplace();
  reshard.layout->files.resize(2);
  reshard.layout->files[0].name = "part_0.safetensors";
  reshard.layout->files[1].name = "part_1.safetensors";
  auto names = [&](const SourceDescription& source, const ReshardStage* stage) {
    StreamRequest r{o, source, transforms, mine, pieces, 0, "/staging"};
    r.reshard = stage;
    return make_sink(o, source)->shared_files(r);
  };
  using Names = std::vector<std::string>;
  EXPECT_EQ(names(checkpoint, nullptr), Names{});
  EXPECT_EQ(names(hugectr, nullptr), (Names{"a.safetensors", "b.safetensors"}));
  o.reshard = 2;
  EXPECT_EQ(names(checkpoint, &reshard), (Names{"part_0.safetensors", "part_1.safetensors"}));
  EXPECT_EQ(names(hugectr, &reshard), (Names{"part_0.safetensors", "part_1.safetensors"}));
  o.format = ExportFormat::kHdf5;
  EXPECT_EQ(names(checkpoint, &reshard), Names{"model.h5"});
  EXPECT_EQ(names(hugectr, nullptr), Names{"model.h5"});
  o.dry_run = true;
  for (const auto format : {ExportFormat::kHdf5, ExportFormat::kSafetensors}) {
    o.format = format;
    EXPECT_EQ(names(checkpoint, &reshard), Names{});
    EXPECT_EQ(names(hugectr, &reshard), Names{});
  }
}

}  // namespace
}  // namespace recis_convert
