#include "recis_convert/metadata/run_report.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <optional>
#include <utility>

#include "recis_convert/common/file_io.h"
#include "recis_convert/metadata/manifest.h"

namespace recis_convert {

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  std::tm tm {};
  ::gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

namespace {

const char* status_name(ExitCode code) {
  switch (code) {
    case ExitCode::kOk: return "ok";
    case ExitCode::kInternal: return "internal error";
    case ExitCode::kUsage: return "usage error";
    case ExitCode::kBadInput: return "bad input";
    case ExitCode::kOutput: return "output error";
    case ExitCode::kInterrupted: return "interrupted";
    case ExitCode::kStalled: return "stalled";
  }
  return "unknown";
}

}  // namespace

RunReport::RunReport(const JobOptions& options, const std::string& host, int ranks) {
  record_["tool_version"] = tool_version();
  record_["started_at"] = utc_now();
  record_["host"] = host;
  record_["ranks"] = ranks;
  record_["options"] = job_config_json(options);  // a valid --config file for the same job
  record_["checkpoint"] = nullptr;
  record_["seconds"] = nlohmann::ordered_json::object();
  record_["per_rank"] = nlohmann::ordered_json::array();
  record_["dropped_by_slot"] = nlohmann::ordered_json::object();
}

RunReport::RunReport(const MergeOptions& options, const std::string& host, int ranks)
    : RunReport(JobOptions(), host, ranks) {
  nlohmann::ordered_json merge = {{"command", "merge"},
                                  {"base", options.base},
                                  {"deltas", options.deltas},
                                  {"export-dir", options.export_dir},
                                  {"buffer-mib", options.buffer_mib},
                                  {"chunk-mib", options.chunk_mib},
                                  {"no-fsync", !options.fsync},
                                  {"overwrite", options.overwrite},
                                  {"balance", balance_name(options.balance)}};
  if (options.older_than) merge["evict-older-than"] = *options.older_than;
  record_["options"] = std::move(merge);
}

void RunReport::set_checkpoint(const CheckpointListing& listing, const std::string& selected_by,
                               const std::string& reason) {
  record_["checkpoint"] = {{"dir", listing.ckpt_dir}, {"id", listing.ckpt_id}, {"selected_by", selected_by},
                           {"reason", reason}};
}

std::string RunReport::checkpoint_dir() const {
  return record_.contains("checkpoint") ? record_["checkpoint"]["dir"].get<std::string>() : "";
}

void RunReport::set_resumed(uint64_t files, uint64_t pieces, uint64_t ranges, uint64_t bytes, double seconds) {
  record_["resume"] = {{"adopted_files", files},   {"adopted_pieces", pieces},   {"adopted_row_ranges", ranges},
                       {"adopted_bytes", bytes},   {"seconds_saved", seconds}};
}

void RunReport::set_stage_seconds(const std::string& stage, double seconds) { record_["seconds"][stage] = seconds; }

void RunReport::set_ranks(const std::vector<RankWork>& ranks) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& r : ranks) {
    nlohmann::ordered_json rank{{"rank", r.rank},         {"files", r.files},     {"bytes_in", r.bytes_in},
                                {"bytes_out", r.bytes_out}, {"seconds", r.seconds}};
    if (!r.copy_path.empty()) rank["copy_path"] = r.copy_path;
    if (!r.error.empty()) rank["error"] = r.error;
    out.push_back(std::move(rank));
  }
  record_["per_rank"] = std::move(out);
}

void RunReport::set_copy(const std::string& path, const std::string& why) {
  record_["copy"] = {{"path", path}, {"why", why}};
}

void RunReport::set_dropped(const std::vector<FileResult>& files) {
  nlohmann::ordered_json by_slot = nlohmann::ordered_json::object();
  for (const auto& [slot, count] : dropped_by_slot(files)) {
    by_slot[slot] = {{"tensors", count.tensors}, {"bytes", count.bytes}};
  }
  record_["dropped_by_slot"] = std::move(by_slot);
}

void RunReport::set_global_steps(const std::map<std::string, GlobalStep>& steps) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& [table, step] : steps) out[table] = {{"step", step.step}, {"from", step.source}};
  record_["global_steps"] = std::move(out);
}

void RunReport::add_error(const std::string& line) { errors_.push_back(line); }

std::string RunReport::to_json(ExitCode status, bool published) const {
  nlohmann::ordered_json out = record_;
  out["finished_at"] = utc_now();
  out["exit_code"] = static_cast<int>(status);
  out["status"] = status_name(status);
  out["published"] = published;
  out["errors"] = errors_;
  return out.dump(2) + "\n";
}

Status write_file_atomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  FileDescriptor fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
  if (fd.get() < 0) return output_error(path, std::string("cannot write: ") + std::strerror(errno));
  auto written = write_all(fd.get(), text.data(), text.size(), temporary);
  if (written && ::fsync(fd.get()) != 0) written = output_error(temporary, std::string("fsync failed: ") + std::strerror(errno));
  if (written && ::close(fd.release()) != 0) written = output_error(temporary, std::string("close failed: ") + std::strerror(errno));
  if (written && ::rename(temporary.c_str(), path.c_str()) != 0) {
    written = output_error(path, std::string("cannot write: ") + std::strerror(errno));
  }
  if (!written) ::unlink(temporary.c_str());
  return written;
}

namespace {
std::mutex g_stop_mutex;
std::optional<std::pair<std::string, RunReport>> g_report_for_stop;  // path, the record at the start
}  // namespace

void keep_report_for_stop(const std::string& path, const RunReport& at_start) {
  std::lock_guard<std::mutex> lock(g_stop_mutex);
  g_report_for_stop.emplace(path, at_start);
}

void forget_report_for_stop() {
  std::lock_guard<std::mutex> lock(g_stop_mutex);
  g_report_for_stop.reset();
}

void write_report_of_stopped_run(ExitCode status, const std::string& error) {
  std::lock_guard<std::mutex> lock(g_stop_mutex);
  if (!g_report_for_stop) return;
  RunReport record = g_report_for_stop->second;
  record.add_error(error);
  (void)write_file_atomically(g_report_for_stop->first, record.to_json(status, false));  // the run ends either way
}

}  // namespace recis_convert
