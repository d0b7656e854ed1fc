// The run record: what one run did — its options, the checkpoint it chose and why, each rank's files, bytes and
// seconds, the bytes dropped per slot, stage timings, the errors and the exit status. Rank 0 fills one in as the
// run goes; a published export carries it as run_record.json, and --report FILE writes it wherever the run
// ends, failures included, for the cron job or pipeline that has to decide what to do next.
#pragma once

#include <nlohmann/json.hpp>
#include <map>
#include <string>
#include <vector>

#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/cli/cli.h"
#include "recis_convert/common/error.h"
#include "recis_convert/sinks/file_export.h"
#include "recis_convert/sources/global_step.h"

namespace recis_convert {

struct RankWork {
  int rank = 0;
  size_t files = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  double seconds = 0;
  std::string error;  // "" if the rank succeeded
  std::string copy_path;  // the copy engine's path (copy_choice.h); "" where no file was copied
};

class RunReport {
 public:
  RunReport(const JobOptions& options, const std::string& host, int ranks);
  // `recis-convert merge`: its own command line in place of an export's options.
  RunReport(const MergeOptions& options, const std::string& host, int ranks);

  void set_checkpoint(const CheckpointListing& listing, const std::string& selected_by, const std::string& reason);
  std::string checkpoint_dir() const;  // "" until set_checkpoint
  void set_stage_seconds(const std::string& stage, double seconds);
  void set_ranks(const std::vector<RankWork>& ranks);
  // How rank 0's copy engine moved the unchanged bytes and why ("copy": path, why); each rank's path is in per_rank.
  void set_copy(const std::string& path, const std::string& why);
  void set_dropped(const std::vector<FileResult>& files);
  // --resume: what the run adopted from an interrupted one ("resume": files, bytes, seconds saved).
  void set_resumed(uint64_t files, uint64_t pieces, uint64_t ranges, uint64_t bytes, double seconds);
  // --evict-older-than: each table's global step and where it came from (global_step.h).
  void set_global_steps(const std::map<std::string, GlobalStep>& steps);
  void add_error(const std::string& line);

  // The record as pretty-printed JSON with a trailing newline. `published` says whether the export is in place.
  std::string to_json(ExitCode status, bool published) const;

 private:
  nlohmann::ordered_json record_;
  nlohmann::ordered_json errors_ = nlohmann::ordered_json::array();
};

// --report of a run the stall watchdog stops (main.cpp): the process ends from the watchdog's thread while the main
// thread may be blocked in MPI, so the record written then is a copy kept when the run started, with the stall's
// line as its error. keep_report_for_stop() while the run goes on, forget_report_for_stop() once it has ended
// (its own record is written then); write_report_of_stopped_run() from the watchdog's thread.
void keep_report_for_stop(const std::string& path, const RunReport& at_start);
void forget_report_for_stop();
void write_report_of_stopped_run(ExitCode status, const std::string& error);

// Writes `text` to `path` atomically (a temporary file next to it, fsynced, then renamed): a reader never sees
// half a file (run records, versions.json, --resume journal entries). Errors are kOutput naming the path.
Status write_file_atomically(const std::string& path, const std::string& text);

// The time now, UTC, as ISO 8601 ("2026-12-03T16:40:25Z"): the run record's and versions.json's times.
std::string utc_now();

}  // namespace recis_convert
