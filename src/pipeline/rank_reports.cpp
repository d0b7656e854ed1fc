#include "recis_convert/pipeline/rank_reports.h"

#include <algorithm>
#include <set>

#include "recis_convert/common/checksum.h"
#include "recis_convert/common/fault_injection.h"
#include "recis_convert/common/interrupt.h"
#include "recis_convert/mpi/job_messages.h"

namespace recis_convert {
namespace {

using Clock = std::chrono::steady_clock;

// Rank 0: which block of `blocks` (every block) each position of each other rank's share is. One pass over the
// blocks (a million of them), each to the ranks that read its file.
std::vector<std::vector<uint32_t>> share_positions(const BlockCatalog& blocks, const WorkPlan& work, int ranks) {
  std::vector<std::vector<int>> readers(work.owners.size());  // per file, the ranks other than 0 that read it
  for (int rank = 1; rank < ranks; ++rank) {
    for (const WorkItem& item : work.items[static_cast<size_t>(rank)]) {
      if (readers[item.file].empty() || readers[item.file].back() != rank) readers[item.file].push_back(rank);
    }
  }
  std::vector<std::vector<uint32_t>> out(static_cast<size_t>(ranks));
  for (size_t i = 0; i < blocks.size(); ++i) {
    const uint32_t file = blocks[i].file;
    if (file == BlockCatalog::kNotIndexed) continue;
    for (int rank : readers[file]) out[static_cast<size_t>(rank)].push_back(static_cast<uint32_t>(i));
  }
  return out;
}

// Rank 0: each split file's checksum, joined from its pieces' in order (checksum.h). Every piece of the output must
// be there once, in order.
Status join_piece_checksums(std::vector<FileResult>& files, std::map<std::string, std::vector<PieceResult>>& pieces,
                            uint64_t piece_bytes) {
  for (FileResult& f : files) {
    auto found = pieces.find(f.name);
    if (found == pieces.end() || !f.written) continue;
    std::vector<PieceResult>& parts = found->second;
    std::sort(parts.begin(), parts.end(), [](const PieceResult& a, const PieceResult& b) { return a.piece < b.piece; });
    std::vector<uint64_t> checksums;
    for (const PieceResult& p : parts) {
      if (p.first_checksum_piece != checksums.size() && !p.checksums.empty()) break;
      checksums.insert(checksums.end(), p.checksums.begin(), p.checksums.end());
    }
    if (checksums.size() != PieceChecksum::count(f.output_bytes, piece_bytes)) {
      return Error{ExitCode::kInternal, f.name, "the pieces' checksums do not cover the file"};
    }
    f.checksum = PieceChecksum::combine(checksums);
  }
  return Ok{};
}

}  // namespace

int report_failure(const Error& error, RunReport& report) {
  Log::error(error.describe());
  report.add_error(error.describe());
  return static_cast<int>(error.code);
}

std::vector<bool> files_shared_with(const WorkPlan& work, int rank) {
  return rank == 0 ? std::vector<bool>(work.owners.size(), false) : work.files_read_by(rank);
}

Result<Gathered> collect_reports(std::vector<RankReport>& reports, std::vector<PackedFileResults>& packed,
                                 RunReport& report, const BlockCatalog& blocks, const WorkPlan& work,
                                 uint64_t piece_bytes, bool join_checksums) {
  Gathered out;
  const auto shares = share_positions(blocks, work, static_cast<int>(reports.size()));
  std::map<std::string, std::vector<PieceResult>> pieces;  // split file -> its pieces' results
  std::vector<RankWork> ranks;
  std::set<std::string> printed;  // e.g. every rank reports the same interruption: say it once
  for (size_t r = 0; r < reports.size(); ++r) {
    RankReport& got = reports[r];
    if (got.error && printed.insert(got.error->describe()).second) {
      const std::string line =
          got.error->describe() + (got.error->code == ExitCode::kInterrupted ? "; nothing was published" : "");
      Log::error(line);
      report.add_error(line);
    }
    auto results = packed[r].unpack([&](uint32_t i) -> std::optional<std::string_view> {
      if (i >= shares[r].size()) return std::nullopt;
      return blocks[shares[r][i]].key;
    });
    if (!results) {
      return Error{ExitCode::kInternal, "", "corrupt rank-report message: the file results of rank " + std::to_string(r)};
    }
    packed[r] = PackedFileResults();
    out.quantization.add(got.quantization);
    out.resumed.files += got.resumed.files;
    out.resumed.pieces += got.resumed.pieces;
    out.resumed.ranges += got.resumed.ranges;
    out.resumed.bytes += got.resumed.bytes;
    out.resumed.seconds += got.resumed.seconds;
    for (const auto& [table, rows] : got.evicted) out.evicted[table] += rows;
    out.judged_by_step.insert(got.judged_by_step.begin(), got.judged_by_step.end());
    for (auto& f : got.results) results->push_back(std::move(f));
    got.results.clear();
    RankWork rank_work{static_cast<int>(r), results->size(), got.shared_bytes, got.shared_bytes, got.seconds,
                       got.error ? got.error->describe() : "", got.copy_path};
    std::set<std::string> split;  // the files whose piece 0 this rank wrote: it reports them too
    for (const auto& p : got.pieces) split.insert(p.file);
    for (auto& f : *results) {
      out.owner[f.name] = static_cast<int>(r);
      if (!split.count(f.name)) {  // a split file's bytes are its pieces', each its writer's
        rank_work.bytes_in += f.source_bytes;
        rank_work.bytes_out += f.written ? f.output_bytes : 0;
      }
      out.files.push_back(std::move(f));  // a million tensors: moved, not copied
    }
    for (auto& p : got.pieces) {
      rank_work.bytes_in += p.bytes_in;
      rank_work.bytes_out += p.bytes_out;
      pieces[p.file].push_back(std::move(p));
    }
    if (got.piece_bytes) {  // model.h5: a rank's pieces need not be its files'
      rank_work.bytes_in = got.piece_bytes->read;
      rank_work.bytes_out = got.piece_bytes->written;
    }
    ranks.push_back(rank_work);
  }
  report.set_ranks(ranks);
  if (!reports.empty() && !reports[0].copy_path.empty()) report.set_copy(reports[0].copy_path, reports[0].copy_why);
  if (join_checksums) {  // a real run in which every rank succeeded: every piece is there
    auto joined = join_piece_checksums(out.files, pieces, piece_bytes);
    if (!joined) return joined.error();
  }
  return out;
}

Result<Gathered> collect_barrier(BarrierOutcome& barrier, RunReport& report, const BlockCatalog& blocks,
                                 const WorkPlan& work, uint64_t piece_bytes, bool join_checksums) {
  if (!barrier.reports) return barrier.reports.error();
  if (!barrier.packed) return barrier.packed.error();
  auto collected = collect_reports(barrier.reports.value(), barrier.packed.value(), report, blocks, work, piece_bytes,
                                   join_checksums);
  if (!collected) return collected;
  if (!barrier.shared) return barrier.shared.error();
  collected.value().shared = std::move(barrier.shared).value();
  return collected;
}

void report_resumed(const ResumeSavings& resumed, RunReport& report, const Log& log) {
  report.set_resumed(resumed.files, resumed.pieces, resumed.ranges, resumed.bytes, resumed.seconds);
  if (resumed.files == 0 && resumed.pieces == 0 && resumed.ranges == 0) return;
  std::string what = resumed.ranges ? std::to_string(resumed.ranges) + " ranges of table rows"
                                    : std::to_string(resumed.files) + " files";  // row tables have no files of their own
  if (resumed.pieces) what += " and " + std::to_string(resumed.pieces) + " pieces of split files";
  log.stage("--resume: adopted " + what + " (" +
            format_bytes(static_cast<double>(resumed.bytes)) + ") of the interrupted run, which took it " +
            format_seconds(resumed.seconds) + " to export them");
}

BarrierOutcome agree_and_gather(Comm& comm, const Sink& sink, const StreamRequest& request, StreamOutcome& streamed,
                                const QuantizationLedger& quantization, double my_seconds,
                                Clock::time_point stream_start, RunReport& report) {
  fault_point("barrier");
  if (!streamed.failure) {
    if (auto stop = interruption()) {
      streamed.failure = *stop;
      comm.announce_failure();
    }
  }
  BarrierOutcome out;
  out.agreed = comm.agree_on_status(streamed.failure ? static_cast<int>(streamed.failure->code) : 0).status;
  out.reports = gather_to_root(
      comm,
      RankReport{streamed.failure, std::move(streamed.results), my_seconds, streamed.shared_bytes, quantization,
                 streamed.resumed, std::move(streamed.pieces), streamed.piece_bytes, streamed.copy_path,
                 streamed.copy_why, std::move(streamed.evicted), std::move(streamed.judged_by_step)},
      "rank-report");
  out.packed = gather_encoded_to_root(comm, std::move(streamed.packed), "file-results");
  out.seconds = seconds_since(stream_start);
  if (out.agreed == 0) {
    const auto checksum_start = Clock::now();
    out.shared = checksum_shared_files(comm, comm.is_root() ? sink.shared_files(request) : std::vector<std::string>{},
                                       request.staging_dir, request.options.piece_bytes());
    out.checksum_seconds = seconds_since(checksum_start);
    report.set_stage_seconds("checksum", out.checksum_seconds);
  }
  return out;
}

}  // namespace recis_convert
