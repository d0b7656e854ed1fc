#include "recis_convert/pipeline.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <climits>
#include <cstdlib>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "recis_convert/checkpoint.h"
#include "recis_convert/checksum.h"
#include "recis_convert/copy_engine.h"
#include "recis_convert/dense_plugin.h"
#include "recis_convert/fault_injection.h"
#include "recis_convert/file_export.h"
#include "recis_convert/file_io.h"
#include "recis_convert/hdf5_export.h"
#include "recis_convert/hdf5_plan.h"
#include "recis_convert/hugectr_export.h"
#include "recis_convert/torch_archive.h"
#include "recis_convert/interrupt.h"
#include "recis_convert/log.h"
#include "recis_convert/manifest.h"
#include "recis_convert/metadata.h"
#include "recis_convert/progress.h"
#include "recis_convert/run_report.h"
#include "recis_convert/plan.h"
#include "recis_convert/slot_filter.h"
#include "recis_convert/staging.h"
#include "recis_convert/strict_json.h"

namespace recis_convert {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kMaxConfigBytes = 64u << 20;  // fg.json / mc configs
constexpr size_t kMaxFilesAwaitingFsync = 32;     // open descriptors per rank while writeback runs behind the copy

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

json error_to_json(const Error& e) { return {{"code", static_cast<int>(e.code)}, {"file", e.file}, {"message", e.message}}; }

Error error_from_json(const json& j) {
  return Error{static_cast<ExitCode>(j.at("code").get<int>()), j.at("file").get<std::string>(),
               j.at("message").get<std::string>()};
}

// Size and XXH3-64 of a file already written, read back with a fixed buffer.
Result<ExtraFile> checksum_of_file(const std::string& path, const std::string& name) {
  auto digest = Checksum::of_file(path, ExitCode::kOutput);
  if (!digest) return digest.error();
  return ExtraFile{name, digest.value().bytes, digest.value().checksum};
}

// Copies an --asset-files file into the staging directory under its own name, checksummed on the way.
Result<ExtraFile> copy_asset(const std::string& source, const std::string& dir, bool fsync) {
  const std::string name = source.substr(source.find_last_of('/') + 1);
  const std::string target = dir + "/" + name;
  FileDescriptor in(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return bad_input(source, std::string("cannot open the asset: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(in.get(), &st) != 0 || !S_ISREG(st.st_mode)) return bad_input(source, "the asset is not a regular file");
  FileDescriptor out(::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
  if (out.get() < 0) return output_error(target, std::string("cannot create: ") + std::strerror(errno));
  FilePlan plan;
  plan.ranges.push_back({0, static_cast<uint64_t>(st.st_size)});
  CopyEngine engine(1 << 20, CopyMethod::kAuto);
  auto copied = engine.write(in.get(), source, out.get(), target, plan);
  if (!copied) return copied.error();
  if ((fsync && ::fsync(out.get()) != 0) || ::close(out.release()) != 0) {
    return output_error(target, std::string("cannot finish writing: ") + std::strerror(errno));
  }
  return ExtraFile{name, copied.value().bytes_written, copied.value().checksum};
}

// Writes a small metadata file into the staging directory and describes it for the manifest.
Result<ExtraFile> write_metadata_file(const std::string& dir, const std::string& name, const std::string& content,
                                      bool fsync) {
  const std::string path = dir + "/" + name;
  FileDescriptor fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
  if (fd.get() < 0) return output_error(path, std::string("cannot create: ") + std::strerror(errno));
  auto written = write_all(fd.get(), content.data(), content.size(), path);
  if (!written) return written.error();
  if ((fsync && ::fsync(fd.get()) != 0) || ::close(fd.release()) != 0) {
    return output_error(path, std::string("write failed: ") + std::strerror(errno));
  }
  return ExtraFile{name, content.size(), Checksum::of(content.data(), content.size())};
}

// fg.json and the mc config are shipped byte for byte, after checking they are JSON objects.
Result<std::string> read_json_config(const std::string& path, const char* what) {
  auto text = read_small_file(path, kMaxConfigBytes);
  if (!text) return text.error();
  auto parsed = parse_strict_json(text.value(), path, what);
  if (!parsed) return parsed.error();
  if (!parsed.value().value.is_object()) return bad_input(path, std::string(what) + " is not a JSON object");
  return text;
}

struct Discovery {
  CheckpointListing listing;
  std::string staging_dir;
  std::string selection;  // why this checkpoint: "latest" or the --select best reason
  std::optional<HugectrExportPlan> hugectr;  // --source hugectr: the tables and their output files
};

// Stage 1, on rank 0: everything that can fail before any data moves fails here, with one message for all ranks.
std::string discover_on_root(const JobOptions& o, std::optional<StagingDir>& staging, const Log& log) {
  std::string ckpt_arg = o.ckpt_dir;
  std::string selection;
  std::optional<HugectrExportPlan> hugectr;
  Result<CheckpointListing> listing = CheckpointListing{};
  if (o.source == SourceKind::kHugectr) {
    auto plan = plan_hugectr_export(o);
    if (!plan) return json{{"error", error_to_json(plan.error())}}.dump();
    hugectr = std::move(plan).value();
    listing = hugectr_listing(*hugectr);
    selection = "HugeCTR graph " + o.graph + ", " + std::to_string(hugectr->tables.size()) + " sparse model(s)";
  } else if (o.select == CheckpointSelect::kBest) {
    auto choice = select_best_checkpoint(o.ckpt_dir, o.eval_log, o.metric, o.metric_order);
    if (!choice) return json{{"error", error_to_json(choice.error())}}.dump();
    ckpt_arg = o.ckpt_dir + "/" + choice.value().ckpt_id;
    selection = choice.value().reason;
    log.stage("selected " + choice.value().ckpt_id + ": " + selection);
  }
  if (!hugectr) listing = discover_checkpoint(ckpt_arg);
  if (!listing) return json{{"error", error_to_json(listing.error())}}.dump();
  if (selection.empty()) {
    struct stat st {};
    const bool given = ::stat((ckpt_arg + "/" + kIndexFile).c_str(), &st) == 0;  // as discover_checkpoint decides
    selection = given ? "named by --ckpt-dir" : "the latest, named last in " + o.ckpt_dir + "/" + kCheckpointListFile;
  }
  for (const auto& [path, what] : {std::pair{o.fg, "fg config"}, std::pair{o.mc, "mc config"}}) {
    if (path.empty()) continue;
    auto config = read_json_config(path, what);
    if (!config) return json{{"error", error_to_json(config.error())}}.dump();
  }
  std::string staging_path;
  if (!o.dry_run) {
    // --overwrite on the checkpoint itself (or a directory holding it) would delete the source.
    char out_real[PATH_MAX], ckpt_real[PATH_MAX];
    if (::realpath(o.export_dir.c_str(), out_real) && ::realpath(listing.value().ckpt_dir.c_str(), ckpt_real)) {
      const std::string out_path = out_real, ckpt_path = std::string(ckpt_real) + "/";
      if (ckpt_path.compare(0, out_path.size() + 1, out_path + "/") == 0 || out_path == "/") {
        return json{{"error", error_to_json(output_error(o.export_dir, "contains the source checkpoint " +
                                                                       listing.value().ckpt_dir +
                                                                       "; refusing to write there"))}}
            .dump();
      }
    }
    std::vector<std::string> stale;
    auto created = StagingDir::create(o.export_dir, o.overwrite, &stale);
    if (!created) return json{{"error", error_to_json(created.error())}}.dump();
    for (const auto& path : stale) log.warn("removed the staging directory of a dead run: " + path);
    staging.emplace(std::move(created).value());
    staging_path = staging->path();
    if (hugectr && o.format == ExportFormat::kSafetensors) {
      auto files = create_hugectr_files(*hugectr, staging_path);
      if (!files) return json{{"error", error_to_json(files.error())}}.dump();
    }
  }
  json message{{"listing", listing_to_json(listing.value())}, {"staging", staging_path}, {"selection", selection}};
  if (hugectr) message["hugectr"] = hugectr_plan_to_json(*hugectr);
  return message.dump();
}

Result<Discovery> decode_discovery(const std::string& message) {
  auto j = json::parse(message);
  if (j.contains("error")) return error_from_json(j.at("error"));
  auto listing = listing_from_json(j.at("listing").get<std::string>());
  if (!listing) return listing.error();
  Discovery discovery{std::move(listing).value(), j.at("staging").get<std::string>(),
                      j.at("selection").get<std::string>(), std::nullopt};
  if (j.contains("hugectr")) {
    auto plan = hugectr_plan_from_json(j.at("hugectr").get<std::string>());
    if (!plan) return plan.error();
    discovery.hugectr = std::move(plan).value();
  }
  return discovery;
}

// Every block of the index must have been found in its file (each file already checked that its own tensors are
// indexed there, so equal counts mean equal sets).
Status check_all_blocks_found(const CheckpointListing& listing, const std::vector<FileResult>& files) {
  std::set<std::string> seen;
  for (const auto& f : files) {
    for (const auto& t : f.kept) seen.insert(t.name);
    for (const auto& t : f.dropped) seen.insert(t.name);
  }
  for (const auto& [key, file] : listing.block_file) {
    if (!seen.count(key)) {
      return bad_input(listing.ckpt_dir + "/" + file,
                       "has no tensor " + json(key).dump() + ", which the checkpoint's index places there");
    }
  }
  return Ok{};
}

struct RankReport {
  std::optional<Error> error;
  std::vector<FileResult> results;
  double seconds = 0;
  uint64_t shared_bytes = 0;  // bytes written into files shared by all ranks (HugeCTR tables), not in `results`
};

std::string encode_rank_report(const std::optional<Error>& error, const std::vector<FileResult>& results,
                               double seconds, uint64_t shared_bytes) {
  json j{{"seconds", seconds}, {"results", file_results_to_json(results)}, {"shared_bytes", shared_bytes}};
  if (error) j["error"] = error_to_json(*error);
  return j.dump();
}

Result<RankReport> decode_rank_report(const std::string& text) {
  auto j = json::parse(text);
  RankReport report;
  report.seconds = j.at("seconds").get<double>();
  report.shared_bytes = j.at("shared_bytes").get<uint64_t>();
  if (j.contains("error")) report.error = error_from_json(j.at("error"));
  auto results = file_results_from_json(j.at("results").get<std::string>());
  if (!results) return results.error();
  report.results = std::move(results).value();
  return report;
}


void print_dry_run(const Log& log, const std::vector<FileResult>& files, const std::map<std::string, int>& owner) {
  for (const auto& f : files) {
    uint64_t dropped = 0;
    for (const auto& t : f.dropped) dropped += t.nbytes();
    log.stage("plan: " + f.name + " -> rank " + std::to_string(owner.at(f.name)) + ": " + format_bytes(f.source_bytes) +
              ", keep " + std::to_string(f.kept.size()) + " tensors, drop " + std::to_string(f.dropped.size()) +
              " (" + format_bytes(static_cast<double>(dropped)) + ")" + (f.written ? "" : ", file not written"));
    for (const auto& t : f.dropped) log.stage("plan:   drop " + json(t.name).dump());
  }
}

// The dense stage (rank 0, after the sparse data agreed): the plugin writes <staging>/<export-folder>/. Returns
// the files it wrote, with checksums, for the manifest.
// The files a dense export wrote into <staging>/<export-folder>, checksummed for the manifest.
Result<std::vector<ExtraFile>> describe_dense_files(const DenseOutcome& outcome, const std::string& output_dir,
                                                    const std::string& folder) {
  std::vector<ExtraFile> described;
  for (const auto& name : outcome.files) {
    auto file = checksum_of_file(output_dir + "/" + name, folder + "/" + name);
    if (!file) return file.error();
    described.push_back(file.value());
  }
  return described;
}

// --source hugectr: the graph's network as TorchScript (the plugin builds it), described for the manifest.
Result<std::vector<ExtraFile>> export_hugectr_dense_on_root(const JobOptions& o, const std::string& staging_dir,
                                                            const Log& log) {
  HugectrDenseRequest request;
  request.graph = o.graph;
  request.dense = o.hugectr_dense;
  request.output_dir = staging_dir + "/" + o.export_folder;
  request.model_name = o.model_name;
  request.outputs = o.outputs;
  request.sample_batch = o.sample_batch;
  fault_point("dense");
  const auto dense_start = Clock::now();
  auto outcome = run_hugectr_dense_export(request);
  if (!outcome) return outcome.error();
  auto files = describe_dense_files(outcome.value(), request.output_dir, o.export_folder);
  if (!files) return files.error();
  const std::vector<ExtraFile>& described = files.value();
  log.stage("dense: the HugeCTR network as " + o.export_folder + "/" + o.model_name + ".pt and " +
            std::to_string(described.size() - 1) + " more files in " + format_seconds(seconds_since(dense_start)));
  return files;
}

Result<std::vector<ExtraFile>> export_dense_on_root(const JobOptions& o, const CheckpointListing& listing,
                                                    const std::string& staging_dir, const Log& log) {
  if (o.source == SourceKind::kHugectr && !o.hugectr_dense.empty()) return export_hugectr_dense_on_root(o, staging_dir, log);
  if (o.dense_model.empty()) {
    log.stage(o.source == SourceKind::kHugectr ? "dense: no --dense given, no dense export"
                                               : "dense: no --dense-model given, no dense export");
    return std::vector<ExtraFile>{};
  }
  DenseRequest request;
  request.dense_model = o.dense_model;
  request.state_dict = listing.ckpt_dir + "/model.pt";
  request.dense_name = o.dense_name;
  request.output_dir = staging_dir + "/" + o.export_folder;
  request.model_name = o.model_name;
  request.outputs = o.outputs;
  request.sample_inputs = o.sample_inputs;
  request.sample_batch = o.sample_batch;
  request.fg_path = o.fg;
  request.mc_path = o.mc;
  struct stat st {};
  if (::stat(request.state_dict.c_str(), &st) != 0) return bad_input(request.state_dict, "missing: the dense weights are needed for --dense-model");
  fault_point("dense");
  const auto dense_start = Clock::now();
  auto outcome = run_dense_export(request);  // loads libtorch on first use: part of the stage's cost
  if (!outcome) return outcome.error();
  const double dense_seconds = seconds_since(dense_start);
  for (const auto& warning : outcome.value().warnings) log.warn(warning);
  auto files = describe_dense_files(outcome.value(), request.output_dir, o.export_folder);
  if (!files) return files.error();
  const std::vector<ExtraFile>& described = files.value();
  log.stage("dense: " + o.export_folder + "/" + o.model_name + ".pt and " + std::to_string(described.size() - 1) +
            " more files in " + format_seconds(dense_seconds) + " (" + format_seconds(outcome.value().seconds) +
            " after loading libtorch)");
  return files;
}

// Stages 5 and 6 on rank 0. Returns the final status of the job.
Status finish_on_root(const JobOptions& o, const Discovery& discovery, std::vector<FileResult> files,
                      const std::map<std::string, int>& owner, StagingDir* staging, const Log& log,
                      Clock::time_point start, RunReport& report) {
  std::sort(files.begin(), files.end(), [](const FileResult& a, const FileResult& b) { return a.name < b.name; });
  auto complete = check_all_blocks_found(discovery.listing, files);
  if (!complete) return complete.error();
  auto tables = summarize_tables(files, discovery.listing.tensorkey, discovery.listing.ckpt_dir, o.quantize_int8);
  if (!tables) return tables.error();

  uint64_t bytes_in = 0, bytes_out = 0, dropped = 0;
  for (const auto& f : files) {
    bytes_in += f.source_bytes;
    bytes_out += f.written ? f.output_bytes : 0;
    for (const auto& t : f.dropped) dropped += t.nbytes();
  }
  if (o.filter_optimizer && dropped == 0) {
    log.warn("--filter-optimizer found no optimizer state (no slot or scalar named sparse_*) in " +
             discovery.listing.ckpt_dir);
  }
  if (o.dry_run) {
    struct stat st {};
    if (!o.export_dir.empty() && ::lstat(o.export_dir.c_str(), &st) == 0 && !o.overwrite) {
      log.warn(o.export_dir + " exists: a real run would stop with exit code 4 unless --overwrite is given");
    }
    print_dry_run(log, files, owner);
    log.stage("dry run: " + std::to_string(files.size()) + " files, " + format_bytes(bytes_in) + " in, " +
              format_bytes(bytes_out) + " would be written, " + format_bytes(dropped) + " dropped; nothing written");
    return Ok{};
  }

  fault_point("metadata");
  const auto metadata_start = Clock::now();
  const std::string& dir = staging->path();
  ManifestInput manifest;
  manifest.tool_version = tool_version();
  char resolved[PATH_MAX];
  manifest.source_checkpoint =
      ::realpath(discovery.listing.ckpt_dir.c_str(), resolved) ? resolved : discovery.listing.ckpt_dir;
  manifest.ckpt_id = discovery.listing.ckpt_id;
  manifest.filter_optimizer = o.filter_optimizer;
  manifest.drop_slots = o.drop_slots;
  manifest.quantize_int8 = o.quantize_int8;
  manifest.fg_path = o.fg;
  manifest.mc_path = o.mc;
  manifest.tables = tables.value();

  std::vector<std::pair<std::string, std::string>> contents;
  if (o.format == ExportFormat::kSafetensors) {  // with hdf5 there are no safetensors files for these to describe
    contents = {{kIndexFile, make_index_json(files)},
                {kTensorKeyFile, make_tensorkey_json(files, discovery.listing.tensorkey)},
                {kTorchRankFile, make_torch_rank_json(files, discovery.listing.tensorkey)}};
  } else {
    auto h5 = checksum_of_file(dir + "/model.h5", "model.h5");
    if (!h5) return h5.error();
    manifest.metadata_files.push_back(h5.value());
    bytes_out = h5.value().bytes;  // the data files' bytes went into model.h5
  }
  for (const auto& [path, name] : {std::pair{o.fg, "fg.json"}, std::pair{o.mc, "input_columns.json"}}) {
    if (path.empty()) continue;
    auto text = read_json_config(path, name);
    if (!text) return text.error();
    contents.emplace_back(name, text.value());
  }
  for (const auto& [name, content] : contents) {
    auto written = write_metadata_file(dir, name, content, o.fsync);
    if (!written) return written.error();
    manifest.metadata_files.push_back(written.value());
  }
  for (const auto& asset : o.asset_files) {
    auto copied = copy_asset(asset, dir, o.fsync);
    if (!copied) return copied.error();
    manifest.asset_files.push_back(copied.value());
  }
  const auto dense_start = Clock::now();
  auto dense = export_dense_on_root(o, discovery.listing, dir, log);
  if (!dense) return dense.error();
  if (!o.dense_model.empty()) report.set_stage_seconds("dense", seconds_since(dense_start));
  for (auto& file : dense.value()) manifest.metadata_files.push_back(std::move(file));
  manifest.files = files;
  auto written = write_metadata_file(dir, "manifest.json", make_manifest_json(manifest), o.fsync);
  if (!written) return written.error();

  // The run record: the only file allowed to differ between runs of the same job.
  report.set_stage_seconds("metadata", seconds_since(metadata_start));
  report.set_stage_seconds("total", seconds_since(start));
  auto recorded = write_metadata_file(dir, "run_record.json", report.to_json(ExitCode::kOk, true), o.fsync);
  if (!recorded) return recorded.error();

  log.stage(std::string("metadata: ") +
            (o.format == ExportFormat::kHdf5 ? "" : "index, tensorkey.json, " + std::string(kTorchRankFile) + ", ") +
            (o.fg.empty() ? "" : "fg.json, ") +
            (o.mc.empty() ? "" : "input_columns.json, ") + "manifest.json (" + std::to_string(tables.value().size()) +
            " tables)");
  fault_point("publish");
  if (auto stop = interruption()) return *stop;
  auto published = staging->publish(o.overwrite);
  if (!published) return published.error();
  for (const auto& path : StagingDir::remove_stale(o.export_dir)) {
    log.warn("removed the staging directory of a dead run: " + path);
  }
  const double seconds = seconds_since(start);
  log.stage("published " + o.export_dir + ": " + std::to_string(files.size()) + " files, " + format_bytes(bytes_in) +
            " in, " + format_bytes(bytes_out) + " out, " + format_bytes(dropped) + " dropped, " +
            format_seconds(seconds) + ", " + format_bytes(seconds > 0 ? bytes_in / seconds : 0) + "/s");
  return Ok{};
}

struct StreamOutcome {
  std::vector<FileResult> results;
  std::optional<Error> failure;
  uint64_t shared_bytes = 0;  // see RankReport
};

// Progress of stage 3 (default format) over all ranks: rank 0 prints lines (progress.h); the other ranks post
// their counts to it at most once a second and a final count when done (MpiWorld::post_progress). Off with
// --quiet or --progress-interval 0, the same on every rank (they all parse the same options).
class StreamProgress {
 public:
  StreamProgress(const JobOptions& o, MpiWorld& world, const Log& log, uint64_t total_bytes, uint64_t total_files,
                 const std::string& items = "files")
      : world_(world),
        log_(log),
        enabled_(!o.quiet && o.progress_interval > 0),
        meter_(total_bytes, total_files, o.progress_interval, Clock::now(), items),
        last_post_(Clock::now()) {}

  void add_bytes(uint64_t n) {
    mine_.bytes += n;
    tick();
  }
  // A file is done (copied, filtered or skipped): count it and all its bytes, copied or not.
  void file_done(uint64_t file_bytes) {
    mine_.bytes = file_start_ + file_bytes;
    file_start_ = mine_.bytes;
    ++mine_.files;
    tick();
  }
  // The end of this rank's share. Rank 0 keeps printing until every other rank has posted its final count.
  void finish() {
    if (!enabled_) return;
    mine_.final = 1;
    if (!world_.is_root()) {
      world_.post_progress(mine_);
      return;
    }
    latest_.resize(static_cast<size_t>(world_.size()));
    latest_[0] = mine_;
    for (;;) {
      world_.receive_progress(latest_);
      bool all_final = true;
      for (const auto& count : latest_) all_final = all_final && count.final;
      if (all_final) return;
      print_if_due();
      ::usleep(20 * 1000);
    }
  }

 private:
  void tick() {
    if (!enabled_) return;
    if (world_.is_root()) {
      latest_.resize(static_cast<size_t>(world_.size()));
      world_.receive_progress(latest_);
      latest_[0] = mine_;
      print_if_due();
    } else if (Clock::now() - last_post_ >= std::chrono::seconds(1)) {
      world_.post_progress(mine_);
      last_post_ = Clock::now();
    }
  }
  void print_if_due() {
    const auto now = Clock::now();
    if (!meter_.due(now)) return;
    uint64_t bytes = 0, files = 0;
    for (const auto& count : latest_) {
      bytes += count.bytes;
      files += count.files;
    }
    log_.stage(meter_.line(bytes, files, now));
  }

  MpiWorld& world_;
  const Log& log_;
  bool enabled_;
  ProgressMeter meter_;
  Clock::time_point last_post_;
  MpiWorld::ProgressCount mine_;
  uint64_t file_start_ = 0;
  std::vector<MpiWorld::ProgressCount> latest_;  // rank 0: every rank's last count
};

// Legacy HugeCTR tables unpacked for --format hdf5 live in the staging directory under this prefix until publish.
constexpr const char* kUnpackedPrefix = ".hugectr-unpacked-";

// Stage 3 with --source hugectr: every rank writes its contiguous range of every table's rows (hugectr_export.h).
StreamOutcome stream_hugectr_tables(const JobOptions& o, MpiWorld& world, const Discovery& discovery, const Log& log) {
  StreamOutcome out;
  const HugectrExportPlan& plan = *discovery.hugectr;
  uint64_t total = 0;
  for (const auto& t : plan.tables) total += t.source.rows * t.source.row_bytes();
  StreamProgress progress(o, world, log, total, plan.tables.size() * static_cast<uint64_t>(world.size()), "table shares");
  if (!o.dry_run) {
    auto written = write_hugectr_rows(plan, discovery.staging_dir, world.rank(), world.size(), o.buffer_mib << 20,
                                      o.fsync, [&progress, &out](uint64_t n) {
                                        progress.add_bytes(n);
                                        out.shared_bytes += n;
                                      });
    if (!written) {
      out.failure = written.error();
      world.announce_failure();
    }
  }
  progress.finish();
  return out;
}

// Stage 3, default format: each rank copies or filters its files into the staging directory.
StreamOutcome stream_into_safetensors(const JobOptions& o, MpiWorld& world, const Discovery& discovery,
                                      const OptimizerSlotFilter& filter, const std::vector<size_t>& mine,
                                      const Log& log) {
  const CheckpointListing& listing = discovery.listing;
  StreamOutcome out;
  CopyEngine engine(o.buffer_mib << 20, o.copy_method);
  WritebackQueue writeback(kMaxFilesAwaitingFsync);
  FileExportSettings settings{discovery.staging_dir, o.dry_run, o.fsync ? &writeback : nullptr, o.quantize_int8};
  uint64_t total_bytes = 0;
  for (const auto& f : listing.files) total_bytes += f.size;
  StreamProgress progress(o, world, log, total_bytes, listing.files.size());
  engine.set_progress_hook([&progress](uint64_t n) { progress.add_bytes(n); });
  for (size_t index : mine) {
    if (world.peer_failed()) break;  // the export will be discarded: stop streaming
    if (auto stop = interruption()) {
      out.failure = *stop;
      break;
    }
    auto result = export_data_file(listing, listing.files[index], filter, engine, settings);
    if (!result) {
      out.failure = result.error();
      break;
    }
    log.detail(listing.files[index].name + ": kept " + std::to_string(result.value().kept.size()) + ", dropped " +
               std::to_string(result.value().dropped.size()) + " tensors");
    out.results.push_back(std::move(result).value());
    progress.file_done(listing.files[index].size);
  }
  if (!out.failure) {
    auto synced = writeback.flush_all();  // every file of this rank is durable before it reports success
    if (!synced) out.failure = synced.error();
  }
  if (out.failure) world.announce_failure();  // agree_on_status counts announcers: every failing rank announces
  progress.finish();
  return out;
}

// model.pt tensors for /dense/ (rank 0 reads them; every rank needs names, dtypes and shapes for the collective
// dataset creation). No model.pt means no /dense group.
Result<std::vector<DenseDataset>> dense_datasets_on_root(const JobOptions& o, const CheckpointListing& listing) {
  std::vector<DenseDataset> out;
  const std::string path = listing.ckpt_dir + "/model.pt";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return out;
  auto state = read_torch_state_dict(path);
  if (!state) return state.error();
  const std::string prefix = o.dense_name.empty() ? "" : o.dense_name + ".";
  for (const auto& t : state.value().tensors) {
    DenseDataset d;
    d.name = !prefix.empty() && t.name.compare(0, prefix.size(), prefix) == 0 ? t.name.substr(prefix.size()) : t.name;
    d.dtype = t.dtype;
    d.shape = t.shape;
    auto data = read_tensor_data(state.value(), t);
    if (!data) return data.error();
    d.data = std::move(data).value();
    out.push_back(std::move(d));
  }
  return out;
}

// Stage 3 with --format hdf5: every rank checks its files' headers, all ranks exchange the summaries, compute the
// same plan, and write OUT/model.h5 together with parallel HDF5.
StreamOutcome stream_into_hdf5(const JobOptions& o, MpiWorld& world, const Discovery& discovery,
                               const OptimizerSlotFilter& filter, const std::vector<size_t>& mine, const Log& log) {
  const CheckpointListing& listing = discovery.listing;
  StreamOutcome out;
  std::vector<SourceTensor> my_tensors;
  if (discovery.hugectr) {
    // HugeCTR tables: table i is summarized (and later read) by rank i % N; the key, emb_vector and slot_id files
    // of the directory format are plain arrays, so each is a source tensor at offset 0.
    const auto& tables = discovery.hugectr->tables;
    for (size_t i = static_cast<size_t>(world.rank()); i < tables.size() && !out.failure; i += static_cast<size_t>(world.size())) {
      const HugectrTableExport& t = tables[i];
      char resolved[PATH_MAX];
      std::string dir = ::realpath(t.source.path.c_str(), resolved) ? resolved : t.source.path;
      if (t.source.format == HugectrSparseFormat::kLegacyFile) {
        // interleaved records: unpacked into plain arrays inside the staging directory, removed before publishing
        dir = discovery.staging_dir + "/" + kUnpackedPrefix + t.name;
        if (!o.dry_run) {
          auto unpacked = unpack_legacy_table(t.source, dir, o.buffer_mib << 20);
          if (!unpacked) {
            out.failure = unpacked.error();
            break;
          }
        }
      }
      static const char* kFiles[] = {"key", "emb_vector", "slot_id"};
      static const char* kSlots[] = {"id", "embedding", "slot_id"};
      for (size_t k = 0; k < t.tensors.size(); ++k) {
        SourceTensor src;
        src.key = t.tensors[k].name;
        src.sparse = true;
        src.child = t.name;
        src.slot = kSlots[k];
        src.slice = kHugectrSlice;
        src.dtype = t.tensors[k].dtype_spelling;
        src.shape = t.tensors[k].shape;
        src.file = dir + "/" + kFiles[k];  // absolute: the tables may live anywhere
        src.owner = world.rank();
        my_tensors.push_back(std::move(src));
      }
      FileResult result;
      result.name = t.file;
      result.source_bytes = t.source_bytes();
      result.kept = t.tensors;
      out.results.push_back(std::move(result));
    }
  }
  for (size_t index : discovery.hugectr ? std::vector<size_t>{} : mine) {
    const DataFile& file = listing.files[index];
    const std::string path = listing.ckpt_dir + "/" + file.name;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      out.failure = bad_input(path, std::string("cannot open: ") + std::strerror(errno));
      break;
    }
    auto decision = decide_data_file(fd, listing, file, filter);
    ::close(fd);
    if (!decision) {
      out.failure = decision.error();
      break;
    }
    FileResult result;
    result.name = file.name;
    result.source_bytes = file.size;
    const auto& header = decision.value().header;
    for (size_t i = 0; i < header.tensors.size(); ++i) {
      const TensorInfo& t = header.tensors[i];
      if (!decision.value().keep[i]) {
        result.dropped.push_back(t);
        continue;
      }
      result.kept.push_back(t);
      const KeyClass& key = decision.value().keys[i];
      SourceTensor s;
      s.key = t.name;
      s.sparse = key.sparse;
      s.child = key.sparse_key.child;
      s.slot = key.sparse_key.slot;
      s.slice = key.sparse_key.slice;
      const size_t part = t.name.rfind("/part_");
      s.part_rank = key.sparse && part != std::string::npos ? std::atoi(t.name.c_str() + part + 6) : 0;
      s.dtype = t.dtype_spelling;
      s.shape = t.shape;
      s.file = file.name;
      s.offset = header.data_start() + t.begin;
      s.owner = world.rank();
      my_tensors.push_back(std::move(s));
    }
    out.results.push_back(std::move(result));
  }
  // Every rank needs every summary: the HDF5 calls that create datasets are collective and must match exactly.
  json mine_json{{"ok", !out.failure}, {"tensors", source_tensors_to_json(my_tensors)}};
  std::vector<SourceTensor> all;
  bool everyone_ok = true;
  for (const auto& text : world.allgather(mine_json.dump())) {
    auto j = json::parse(text);
    everyone_ok = everyone_ok && j.at("ok").get<bool>();
    auto tensors = source_tensors_from_json(j.at("tensors").get<std::string>());
    if (tensors) all.insert(all.end(), tensors.value().begin(), tensors.value().end());
  }
  if (!everyone_ok) {
    if (out.failure) world.announce_failure();
    return out;
  }
  auto plan = plan_hdf5(all, o.buffer_mib << 20, listing.ckpt_dir);
  if (!plan) {  // the same on every rank; reported once, by rank 0
    if (world.is_root()) {
      out.failure = plan.error();
      world.announce_failure();
    }
    return out;
  }
  // Dense tensors: rank 0 reads model.pt and tells everyone the datasets to create.
  std::vector<DenseDataset> dense;
  std::string dense_message;
  if (world.is_root()) {
    auto read = dense_datasets_on_root(o, listing);
    json list = json::array();
    if (read) {
      dense = std::move(read).value();
      for (const auto& d : dense) list.push_back({d.name, static_cast<int>(d.dtype), d.shape});
      dense_message = json{{"ok", true}, {"tensors", list}}.dump();
    } else {
      out.failure = read.error();
      dense_message = json{{"ok", false}}.dump();
    }
  }
  auto dense_list = json::parse(world.broadcast_from_root(dense_message));
  if (!dense_list.at("ok").get<bool>()) {
    if (out.failure) world.announce_failure();
    return out;
  }
  if (!world.is_root()) {
    for (const auto& d : dense_list.at("tensors")) {
      dense.push_back({d[0].get<std::string>(), static_cast<DType>(d[1].get<int>()), d[2].get<std::vector<uint64_t>>(), ""});
    }
  }
  if (o.dry_run) return out;
  // Open MPI 4.1.4's MPI-IO (OMPIO and ROMIO alike) retries forever when the file system fills up during a
  // write, so the space model.h5 needs is checked first, by rank 0, for everyone.
  std::string space_message;
  if (world.is_root()) {
    uint64_t needed = 1u << 20;  // HDF5 metadata and headroom
    for (const auto& table : plan.value().tables) {
      needed += table.parts.size() * 5 * 8;
      for (const auto& slot : table.slots) needed += slot.row_bytes * (slot.dims.empty() ? 1 : slot.dims[0]);
    }
    for (const auto& scalar : plan.value().optimizer) needed += scalar.row_bytes;
    for (const auto& d : dense) needed += d.data.size();
    struct statvfs fs {};
    if (::statvfs(discovery.staging_dir.c_str(), &fs) == 0) {
      const uint64_t available = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
      if (available < needed + needed / 100) {
        space_message = "model.h5 needs about " + format_bytes(static_cast<double>(needed)) + " but the file system has " +
                        format_bytes(static_cast<double>(available)) + " free";
      }
    }
  }
  space_message = world.broadcast_from_root(space_message);
  if (!space_message.empty()) {
    if (world.is_root()) {
      out.failure = output_error(o.export_dir, space_message);
      world.announce_failure();
    }
    return out;
  }
  log.stage("hdf5: " + std::to_string(plan.value().tables.size()) + " tables, " + std::to_string(dense.size()) +
            " dense tensors into model.h5 (" + (o.hdf5_collective ? "collective" : "independent") + " MPI-IO)");
  char resolved[PATH_MAX];
  Hdf5Attributes attributes{tool_version(), ::realpath(listing.ckpt_dir.c_str(), resolved) ? resolved : listing.ckpt_dir};
  // Progress: the rounds are collective, so rank 0 knows how far every rank is from the plan alone.
  uint64_t total_bytes = 0, total_datasets = 0;
  total_datasets += plan.value().optimizer.size();
  for (const auto& table : plan.value().tables) total_datasets += table.slots.size();
  auto count = [&](const DatasetPlan& d) {
    for (const auto& piece : d.pieces) total_bytes += piece.rows * d.row_bytes;
  };
  for (const auto& table : plan.value().tables) std::for_each(table.slots.begin(), table.slots.end(), count);
  std::for_each(plan.value().optimizer.begin(), plan.value().optimizer.end(), count);
  ProgressMeter meter(total_bytes, total_datasets, o.quiet ? 0 : o.progress_interval, Clock::now(), "datasets");
  auto progress = [&](uint64_t bytes, uint64_t datasets) {
    if (world.is_root() && meter.due(Clock::now())) log.stage(meter.line(bytes, datasets, Clock::now()));
  };
  auto written = write_hdf5_export(discovery.staging_dir + "/model.h5", plan.value(), dense, listing, attributes,
                                   world.rank(), world.size(), o.buffer_mib << 20,
                                   o.hdf5_collective ? Hdf5Transfer::kCollective : Hdf5Transfer::kIndependent,
                                   o.fsync, progress);
  if (!written) {
    out.failure = written.error();
    world.announce_failure();
  }
  return out;
}

}  // namespace

// The export itself; run_export() below adds the --report file around it.
static ExitCode export_checkpoint(const JobOptions& o, MpiWorld& world, RunReport& report) {
  const auto start = Clock::now();
  Log log(world.rank(), o.quiet, o.verbose);
  std::optional<StagingDir> staging;  // rank 0 only; removed on every path that does not publish

  // 1. discover
  fault_point("discover");
  std::string message = world.is_root() ? discover_on_root(o, staging, log) : std::string();
  auto discovery = decode_discovery(world.broadcast_from_root(message));
  if (!discovery) {
    if (world.is_root()) {
      Log::error(discovery.error().describe());
      report.add_error(discovery.error().describe());
    }
    return discovery.error().code;
  }
  const CheckpointListing& listing = discovery.value().listing;
  report.set_checkpoint(listing, o.select == CheckpointSelect::kBest ? "best" : "latest", discovery.value().selection);
  uint64_t total_bytes = 0;
  std::vector<uint64_t> sizes;
  for (const auto& f : listing.files) {
    sizes.push_back(f.size);
    total_bytes += f.size;
  }
  log.stage((discovery.value().hugectr ? "HugeCTR model " : "checkpoint ") + listing.ckpt_dir + ": " +
            std::to_string(listing.files.size()) + " data files, " +
            format_bytes(static_cast<double>(total_bytes)) + ", " + std::to_string(listing.tensorkey.size()) +
            " sparse blocks");

  // 2. plan
  const std::vector<int> owners = assign_files(sizes, world.size(), o.balance);
  const std::vector<size_t> mine = files_of_rank(owners, world.rank());
  OptimizerSlotFilter filter(o.filter_optimizer, std::set<std::string>(o.drop_slots.begin(), o.drop_slots.end()));
  std::string mode = o.format == ExportFormat::kHdf5 ? "into model.h5" : "";
  if (filter.is_identity() && o.format != ExportFormat::kHdf5) mode = "copying byte for byte";
  if (!filter.is_identity()) mode += mode.empty() ? "filtering:" : ", filtering:";
  if (o.filter_optimizer) mode += " optimizer state";
  for (const auto& slot : o.drop_slots) mode += " " + slot;
  if (discovery.value().hugectr) {
    log.stage("plan: the rows of " + std::to_string(listing.files.size()) + " HugeCTR table(s) split over " +
              std::to_string(world.size()) + " ranks, one RecIS-layout file per table" + (o.dry_run ? " (dry run)" : ""));
  } else {
    log.stage("plan: " + std::to_string(listing.files.size()) + " files over " + std::to_string(world.size()) +
              " ranks (" + balance_name(o.balance) + "), " + mode + (o.dry_run ? " (dry run)" : ""));
  }

  // 3. stream
  const auto stream_start = Clock::now();
  StreamOutcome streamed = discovery.value().hugectr && o.format == ExportFormat::kSafetensors
                               ? stream_hugectr_tables(o, world, discovery.value(), log)
                           : o.format == ExportFormat::kHdf5
                               ? stream_into_hdf5(o, world, discovery.value(), filter, mine, log)
                               : stream_into_safetensors(o, world, discovery.value(), filter, mine, log);
  std::vector<FileResult>& results = streamed.results;
  std::optional<Error>& failure = streamed.failure;
  const double my_seconds = seconds_since(stream_start);

  // 4. agree, then gather every result and error on rank 0
  fault_point("barrier");
  if (!failure) {
    if (auto stop = interruption()) {
      failure = *stop;
      world.announce_failure();
    }
  }
  const int agreed = world.agree_on_status(failure ? static_cast<int>(failure->code) : 0).status;
  auto gathered = world.gather_to_root(encode_rank_report(failure, results, my_seconds, streamed.shared_bytes));
  const double stream_seconds = seconds_since(stream_start);

  int final_status = agreed;
  if (world.is_root()) {
    std::vector<RankWork> ranks;
    std::vector<FileResult> files;
    std::map<std::string, int> owner;
    std::set<std::string> printed;  // e.g. every rank reports the same interruption: say it once
    for (size_t r = 0; r < gathered.size(); ++r) {
      auto rank_report = decode_rank_report(gathered[r]);
      if (!rank_report) {
        Log::error(rank_report.error().describe());
        report.add_error(rank_report.error().describe());
        final_status = static_cast<int>(ExitCode::kInternal);
        continue;
      }
      const RankReport& got = rank_report.value();
      if (got.error && printed.insert(got.error->describe()).second) {
        const std::string line = got.error->describe() +
                                 (got.error->code == ExitCode::kInterrupted ? "; nothing was published" : "");
        Log::error(line);
        report.add_error(line);
      }
      RankWork work{static_cast<int>(r), got.results.size(), got.shared_bytes, got.shared_bytes, got.seconds,
                    got.error ? got.error->describe() : ""};
      for (const auto& f : got.results) {
        owner[f.name] = static_cast<int>(r);
        files.push_back(f);
        work.bytes_in += f.source_bytes;
        work.bytes_out += f.written ? f.output_bytes : 0;
      }
      ranks.push_back(work);
    }
    if (discovery.value().hugectr && o.format == ExportFormat::kHdf5 && !o.dry_run) {
      for (const auto& t : discovery.value().hugectr->tables) {
        if (t.source.format == HugectrSparseFormat::kLegacyFile) remove_tree(discovery.value().staging_dir + "/" + kUnpackedPrefix + t.name);
      }
    }
    if (discovery.value().hugectr && o.format == ExportFormat::kSafetensors && final_status == 0) {
      // every rank wrote part of every file: rank 0 describes the finished files
      auto described = o.dry_run ? Result<std::vector<FileResult>>(std::vector<FileResult>{})
                                 : hugectr_file_results(*discovery.value().hugectr, discovery.value().staging_dir);
      if (!described) {
        Log::error(described.error().describe());
        report.add_error(described.error().describe());
        final_status = static_cast<int>(described.error().code);
      } else {
        files = std::move(described).value();
        for (const auto& f : files) owner[f.name] = 0;
      }
    }
    report.set_ranks(ranks);
    report.set_dropped(files);
    report.set_stage_seconds("stream", stream_seconds);
    if (final_status == 0) {
      log.stage("streamed " + std::to_string(files.size()) + " files in " + format_seconds(stream_seconds));
      auto finished = finish_on_root(o, discovery.value(), std::move(files), owner, staging ? &*staging : nullptr,
                                     log, start, report);
      if (!finished) {
        Log::error(finished.error().describe());
        report.add_error(finished.error().describe());
        final_status = static_cast<int>(finished.error().code);
      }
    }
    if (staging) staging->discard();  // no-op after a successful publish
  }
  // 6. everyone exits with rank 0's verdict, so mpirun's status is the job's status
  final_status = std::stoi(world.broadcast_from_root(std::to_string(final_status)));
  return static_cast<ExitCode>(final_status);
}

ExitCode run_export(const JobOptions& o, MpiWorld& world) {
  const auto start = Clock::now();
  RunReport report(o, world.host(), world.size());
  const ExitCode status = export_checkpoint(o, world, report);
  if (world.is_root() && !o.report.empty()) {
    report.set_stage_seconds("total", seconds_since(start));
    auto written = write_report_file(o.report, report.to_json(status, status == ExitCode::kOk && !o.dry_run));
    // The export's outcome stands either way; the report is about it, not part of it.
    if (!written) Log(world.rank(), o.quiet, o.verbose).warn(written.error().describe());
  }
  return status;
}

}  // namespace recis_convert
