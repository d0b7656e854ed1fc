#include "recis_convert/sinks/row_table_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "recis_convert/common/fault_injection.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/pipeline/row_loop.h"
#include "recis_convert/plan/slices.h"
#include "recis_convert/publish/staging.h"
#include "recis_convert/sinks/reshard_writer.h"

namespace recis_convert {

Status create_row_table_files(const RowTables& model, const std::string& staging_dir, bool keep) {
  for (const auto& t : model.tables) {
    auto created = create_sized_file(staging_dir + "/" + t.file, t.preamble, t.file_bytes(), keep);
    if (!created) return created;
  }
  return Ok{};
}

Result<std::vector<FileResult>> row_table_file_results(const RowTables& model, const std::string& staging_dir,
                                                     const std::map<std::string, FileDigest>& digests) {
  std::vector<FileResult> results;
  for (const auto& t : model.tables) {
    auto found = digests.find(t.file);
    if (found == digests.end()) return Error{ExitCode::kInternal, staging_dir + "/" + t.file, "was not checksummed"};
    const FileDigest& digest = found->second;
    if (digest.bytes != t.file_bytes()) {
      return output_error(staging_dir + "/" + t.file, "has " + std::to_string(digest.bytes) + " bytes, expected " +
                                                          std::to_string(t.file_bytes()));
    }
    FileResult r;
    r.name = t.file;
    r.source_bytes = t.source_bytes();
    r.written = true;
    r.output_bytes = digest.bytes;
    r.checksum = digest.checksum;
    r.kept = t.tensors;
    results.push_back(std::move(r));
  }
  std::sort(results.begin(), results.end(), [](const FileResult& a, const FileResult& b) { return a.name < b.name; });
  return results;
}

namespace {

// The name of output file `target` of a placement: a --reshard part file, or table `target`'s own file.
std::string target_file(const JobOptions& o, const RowTables& model, uint32_t target) {
  return o.reshard ? reshard_file_name(target, o.reshard) : model.tables[target].file;
}

// The regions of the output files a range fills, as planned (slot by slot, target by target), checksums aside.
RowRangeResult planned_regions(const JobOptions& o, const RowTables& model, const RowRangePlacement& placed,
                               const RowRange& range, int rank, int world_size) {
  const RowTable& t = model.tables[placed.table];
  RowRangeResult out{placed.table, static_cast<uint32_t>(rank), static_cast<uint32_t>(world_size), {},
                     range.count * t.source.read_row_bytes(), std::nullopt};
  for (size_t k = 0; k < t.slots.size(); ++k) {
    const uint64_t row_bytes = t.slots[k].rows->output().row_bytes();
    for (const Placement& p : placed.slots[k]) {
      out.regions.push_back(OutputRegion{target_file(o, model, p.target), p.offset, p.rows * row_bytes, 0});
    }
  }
  return out;
}

}  // namespace

Status write_row_table_ranges(const JobOptions& o, const RowTables& model, const RowTablePlan& plan,
                              const RowTransformChain& transforms, const std::string& staging_dir, int rank,
                              int world_size, ResumeSavings* resumed, const Log& log,
                              const std::function<void(uint64_t)>& progress) {
  ReshardOutputFiles files([&](uint32_t target) { return staging_dir + "/" + target_file(o, model, target); });
  std::unique_ptr<WritebackStarter> writeback;
  if (o.fsync) writeback = std::make_unique<WritebackStarter>();
  std::optional<PartOfIdTable> part_of;
  if (o.reshard) part_of.emplace(o.reshard);
  PlacementIndex placements(o.reshard);
  std::vector<uint32_t> index;
  std::vector<char> buffer(std::max<size_t>(o.buffer_mib << 20, 1));
  RowLoop loop(buffer);
  for (const RowRangePlacement& placed : plan.mine) {
    const auto start = std::chrono::steady_clock::now();
    const RowTable& t = model.tables[placed.table];
    const RowRange range = rows_of_rank(t.source.rows(), world_size, rank);
    if (range.count == 0) continue;
    RowRangeResult regions = planned_regions(o, model, placed, range, rank, world_size);
    // with a serving dtype, the table's error so far is set aside while the range converts its rows, so that the
    // range's own is journaled (exact sums: added back, the ledger is as without --resume)
    TableQuantization* converted = nullptr;
    if (QuantizationLedger* ledger = transforms.quantization()) {
      auto found = ledger->tables.find(t.name);
      if (found != ledger->tables.end()) converted = &found->second;
    }
    if (resumed) {
      if (auto adopted = adopt_journaled_rows(staging_dir, regions, log)) {
        if (converted != nullptr && adopted->rows->error) converted->error.add(*adopted->rows->error);
        ++resumed->ranges;
        for (const OutputRegion& region : regions.regions) resumed->bytes += region.bytes;
        resumed->seconds += adopted->seconds;
        if (progress) progress(regions.bytes_in);
        continue;
      }
    }
    QuantizationError before;
    if (resumed && converted != nullptr) std::swap(before, converted->error);
    std::vector<std::unique_ptr<RowRouter>> routers;
    for (const auto& targets : placed.slots) {
      routers.push_back(std::make_unique<RowRouter>(targets, files, writeback.get(), resumed != nullptr));
    }
    if (o.reshard) placements.set(placed.slots.front());
    std::unique_ptr<RowReader> reader = t.source.open_rows();
    const RowFilter by_norm = embedding_norm_filter(t.source.embedding_dtype(), t.source.dim(),
                                                    o.eviction.l2_below.value_or(0.0f));
    RowRun run;
    run.first = range.first;
    run.end = range.first + range.count;
    uint64_t widest = 0;  // the widest output row: the grouped copies of each slot's rows need room
    for (const auto& slot : t.slots) {
      run.slots.push_back(OutputSlot{row_table_column(slot.slot), slot.rows.get()});
      widest = std::max(widest, slot.rows->output().row_bytes());
    }
    run.filter = o.eviction.l2_below ? &by_norm : nullptr;
    run.id_column = kRowTableIds;
    run.route = part_of ? &*part_of : nullptr;
    run.scratch_row_bytes = widest;
    auto done = loop.run(*reader, run, [&](const RowChunk& chunk) -> Status {
      index.assign(chunk.rows, 0);  // without --reshard, every row goes to the table's own file
      if (part_of) {
        if (auto unplaced = placements.look_up(chunk.targets, chunk.rows, index.data())) {
          return unplaced_row(t.source.path(), "table " + nlohmann::json(t.name).dump(), chunk.first + *unplaced);
        }
      }
      for (size_t k = 0; k < t.slots.size(); ++k) {
        auto written = routers[k]->write(chunk.slots[k], t.slots[k].rows->output().row_bytes(), index.data(),
                                         chunk.rows, chunk.scratch);
        if (!written) return written;
      }
      if (progress) progress(chunk.source_rows * t.source.read_row_bytes());
      return Ok{};
    });
    if (!done) return done.error();
    size_t region = 0;
    for (size_t k = 0; k < routers.size(); ++k) {
      routers[k]->finish();
      for (size_t p = 0; p < placed.slots[k].size(); ++p, ++region) {
        // the count pass and this pass read different rows: the source changed in between
        if (routers[k]->written(p) != regions.regions[region].bytes) {
          return bad_input(t.source.path(), "file changed as we read it: table " + nlohmann::json(t.name).dump() +
                                                ", rows " + std::to_string(range.first) + ".." +
                                                std::to_string(range.first + range.count) +
                                                " kept other rows than when they were counted");
        }
        if (resumed) regions.regions[region].checksum = routers[k]->checksum(p);
      }
    }
    if (resumed && converted != nullptr) {
      regions.error = converted->error;
      converted->error = std::move(before);
      converted->error.add(*regions.error);
    }
    if (resumed) {
      auto journaled = journal_rows(staging_dir, regions,
                                    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                                    o.fsync);
      if (!journaled) return journaled;
    }
    fault_point("range");
  }
  return files.close_all();
}

}  // namespace recis_convert
