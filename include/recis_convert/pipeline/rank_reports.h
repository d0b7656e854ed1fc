// Stage 4 of an export or a merge, the barrier: what each rank tells rank 0 (a RankReport, its file results packed
// beside it), and rank 0's reading of them all: every error said once, every file's result with the rank that wrote
// it, split files' checksums joined from their pieces', the run record's per-rank figures. Encodings:
// mpi/job_messages.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/common/log.h"
#include "recis_convert/metadata/run_report.h"
#include "recis_convert/mpi/comm.h"
#include "recis_convert/plan/piece_plan.h"
#include "recis_convert/publish/resume_journal.h"
#include "recis_convert/sinks/packed_file_results.h"
#include "recis_convert/sinks/shared_file_checksums.h"
#include "recis_convert/sinks/sink.h"
#include "recis_convert/sources/block_catalog.h"
#include "recis_convert/transforms/quantization_error.h"

namespace recis_convert {

// Rank 0 reports a failure once: on stderr and in the run record. Returns its exit code.
int report_failure(const Error& error, RunReport& report);

// What each rank tells rank 0 at the barrier.
// (Every other rank's file results follow it on their own: PackedFileResults.)
struct RankReport {
  std::optional<Error> error;
  std::vector<FileResult> results;  // rank 0's own (its report does not travel)
  double seconds = 0;
  uint64_t shared_bytes = 0;  // see StreamOutcome
  QuantizationLedger quantization;  // the tables this rank converted, with their error so far
  ResumeSavings resumed;             // --resume: what this rank adopted instead of exporting
  std::vector<PieceResult> pieces;   // the pieces of split files it wrote
  std::optional<PieceBytes> piece_bytes;  // model.h5: what it read and wrote, by its pieces
  std::string copy_path, copy_why;        // see StreamOutcome
  std::map<std::string, uint64_t> evicted;  // see StreamOutcome
  std::set<std::string> judged_by_step;
};

// Rank 0 at the barrier: every rank's results and errors (each error said once), into the run record.
struct Gathered {
  std::vector<FileResult> files;
  SharedFileDigests shared;          // the files every rank wrote into (shared_file_checksums.h)
  std::map<std::string, int> owner;  // file -> the rank that exported it
  QuantizationLedger quantization;   // every rank's, merged (exactly: the order does not matter)
  ResumeSavings resumed;             // every rank's, summed in rank order
  std::map<std::string, uint64_t> evicted;  // rows the stream left out, every rank's, per table (merge)
  std::set<std::string> judged_by_step;
  bool ok = true;
};

// Which files' blocks `rank` gets (rank 0 keeps every block: it is sent none).
std::vector<bool> files_shared_with(const WorkPlan& work, int rank);

// Rank 0. `blocks`: every block (the other ranks' packed results name theirs by position in their share);
// `join_checksums`: a real run in which every rank succeeded, so every piece of every split file is there.
Result<Gathered> collect_reports(std::vector<RankReport>& reports, std::vector<PackedFileResults>& packed,
                                 RunReport& report, const BlockCatalog& blocks, const WorkPlan& work,
                                 uint64_t piece_bytes, bool join_checksums);

// 4. barrier: every rank agrees on success; rank 0 gathers every result and error. Then the files every rank
// wrote into together: every rank checksums a share of their pieces (4b).
struct BarrierOutcome {
  int agreed = 0;
  Result<std::vector<RankReport>> reports = std::vector<RankReport>{};
  Result<std::vector<PackedFileResults>> packed = std::vector<PackedFileResults>{};
  Result<SharedFileDigests> shared = SharedFileDigests{};
  double seconds = 0;           // the stream's, to the gathered reports
  double checksum_seconds = 0;  // 4b's
};
// The export's and the merge's: `quantization` is this rank's ledger, `my_seconds` its stream's time.
BarrierOutcome agree_and_gather(Comm& comm, const Sink& sink, const StreamRequest& request, StreamOutcome& streamed,
                                const QuantizationLedger& quantization, double my_seconds,
                                std::chrono::steady_clock::time_point stream_start, RunReport& report);

// Rank 0 after agree_and_gather: every rank's results collected (collect_reports) with the shared files' digests
// (Gathered::shared), or the first error among the barrier's messages.
Result<Gathered> collect_barrier(BarrierOutcome& barrier, RunReport& report, const BlockCatalog& blocks,
                                 const WorkPlan& work, uint64_t piece_bytes, bool join_checksums);

// --resume: the files adopted from an interrupted run, said once and recorded in the run record.
void report_resumed(const ResumeSavings& resumed, RunReport& report, const Log& log);

}  // namespace recis_convert
