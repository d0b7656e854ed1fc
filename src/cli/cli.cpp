#include "recis_convert/cli/cli.h"

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <nlohmann/json.hpp>

#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/common/fault_injection.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/publish/serving_root.h"
#include "recis_convert/publish/staging.h"
#include "recis_convert/cli/json_config.h"

#ifndef RECIS_CONVERT_VERSION
#define RECIS_CONVERT_VERSION "0.0.0-dev"
#endif

namespace recis_convert {
namespace {

const char* kDescription =
    "recis-convert: turn a RecIS training checkpoint into a serving export.\n"
    "Run under MPI (mpirun -np N recis-convert ...): data files are split over the ranks, streamed through an\n"
    "optional optimizer-slot filter into a staging directory, and published atomically by rank 0.\n"
    "Also: recis-convert inspect PATH [--json]   (what a checkpoint or export holds; see inspect --help)\n"
    "      recis-convert verify OUT                (does an export match its manifest; see verify --help)\n"
    "      recis-convert merge BASE DELTA... --export-dir OUT   (apply delta exports; see merge --help)\n\n"
    "Exit codes: 0 success, 1 internal error, 2 usage, 3 bad or incomplete input, 4 output error\n"
    "(export exists, another run exporting there, permission, disk full), 5 interrupted (SIGTERM, SIGINT,\n"
    "SIGUSR1), 6 stalled (--stall-timeout: a rank silent or its work stopped).";

const std::map<std::string, Balance> kBalances = {{"round-robin", Balance::kRoundRobin}, {"size", Balance::kSize}};
constexpr const char* kBalanceHelp = "How files are dealt to ranks: round-robin (default) or size";
const std::map<std::string, ExportFormat> kFormats = {{"safetensors", ExportFormat::kSafetensors},
                                                      {"hdf5", ExportFormat::kHdf5}};
const std::map<std::string, ServingDType> kServingDTypes = {
    {"none", ServingDType::kNone}, {"fp16", ServingDType::kFp16}, {"bf16", ServingDType::kBf16},
    {"int8", ServingDType::kInt8}, {"int4", ServingDType::kInt4}, {"int2", ServingDType::kInt2}};
const std::map<std::string, Hdf5Transfer> kHdf5Transfers = {{"auto", Hdf5Transfer::kAuto},
                                                             {"collective", Hdf5Transfer::kCollective},
                                                             {"independent", Hdf5Transfer::kIndependent}};
const std::map<std::string, SourceKind> kSources = {
    {"recis", SourceKind::kRecis}, {"hugectr", SourceKind::kHugectr}, {"dcp", SourceKind::kDcp}};
const std::map<std::string, CheckpointSelect> kSelects = {{"latest", CheckpointSelect::kLatest},
                                                          {"best", CheckpointSelect::kBest}};
const std::map<std::string, CopyMethod> kCopyMethods = {
    {"auto", CopyMethod::kAuto}, {"kernel", CopyMethod::kKernel}, {"buffered", CopyMethod::kBuffered}};

// A choice option's transform: the name (any case) becomes the value; anything else is refused naming the choices.
template <typename Value>
CLI::Validator one_of(const std::map<std::string, Value>& choices) {
  std::string allowed;
  for (const auto& entry : choices) allowed += (allowed.empty() ? "" : "|") + entry.first;
  return CLI::Validator(
      [choices, allowed](std::string& input) -> std::string {
        std::string lower = input;
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
        auto it = choices.find(lower);
        if (it == choices.end()) return "\"" + input + "\" is not one of " + allowed;
        input = std::to_string(static_cast<int>(it->second));
        return "";
      },
      allowed);
}

// Every option's value and every argument: not empty, since no option gives "" a meaning (an unset $BASE in
// `--delta-since "$BASE"` must not turn a delta into a full export), and UTF-8, since paths and names are recorded
// in JSON (the run record, the manifest, versions.json).
const CLI::Validator kPlainValue(
    [](std::string& value) -> std::string {
      if (value.empty()) return "an empty value is not allowed";
      if (!is_valid_utf8(value)) return quoted_name(value) + " is not valid UTF-8";
      return "";
    },
    "");

// An input file option: it must exist and be a regular file. A FIFO would block the reader forever, a directory or
// device is no input; refused here, before anything opens it (the readers refuse it again by type).
const CLI::Validator kInputFile(
    [](std::string& path) -> std::string {
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0) return "file does not exist: " + path;
      const std::string problem = file_type_problem(path);
      return problem.empty() ? "" : path + " " + problem;
    },
    "FILE");

// The files only rank 0 reads (--fg, --mc, --asset-files, --dense-model, --sample-inputs), as the other ranks parse
// them: not checked, since across nodes they may be on rank 0's node alone (issue 36).
const CLI::Validator kUncheckedFile([](std::string&) { return std::string(); }, "FILE");

CommandLine usage(std::string message) {
  CommandLine out;
  out.action = CommandLine::Action::kExit;
  out.exit_code = 2;
  out.message = std::move(message);
  return out;
}

}  // namespace

const char* tool_version() { return RECIS_CONVERT_VERSION; }

namespace {

template <typename Map, typename Value>
std::string name_of(const Map& choices, const Value& value) {
  for (const auto& [name, v] : choices) {
    if (v == value) return name;
  }
  return "";
}

// The export command's options that are not fields of JobOptions as they stand (JobOptions keeps the result).
struct FlagValues {
  std::string config;
  uint64_t evict_older_than = 0;  // JobOptions::eviction, when given
  float evict_l2_below = 0;
  bool no_fsync = false;
  bool larger_is_better = false;
  bool smaller_is_better = false;
};

// How an option appears in a job config written by job_config_json (run records): its value, or nothing.
using Recorded = std::function<std::optional<nlohmann::ordered_json>()>;
template <typename T>
Recorded always(const T& value) {
  return [&value] { return nlohmann::ordered_json(value); };
}
template <typename T>
Recorded if_given(const T& value) {  // strings and lists: left out when empty
  return [&value]() -> std::optional<nlohmann::ordered_json> {
    if (value.empty()) return std::nullopt;
    return nlohmann::ordered_json(value);
  };
}
template <typename Map, typename Value>
Recorded by_name(const Map& choices, const Value& value) {
  return [&choices, &value] { return nlohmann::ordered_json(name_of(choices, value)); };
}
Recorded only_if(std::function<bool()> condition, Recorded record) {
  return [condition, record]() -> std::optional<nlohmann::ordered_json> {
    if (!condition()) return std::nullopt;
    return record();
  };
}
const Recorded kNotRecorded = [] { return std::optional<nlohmann::ordered_json>(); };

// The row transforms' options, for the export and for merge alike (one meaning each)
constexpr const char* kFilterOptimizerHelp =
    "Drop optimizer state: sparse slots and dense scalars whose name starts with 'sparse_'";
constexpr const char* kDropSlotHelp = "Also drop this sparse slot (repeatable), e.g. step_filter";
constexpr const char* kQuantizeEmbeddingsHelp =
    "Serving dtype of every table's embedding rows, in PyTorch's layouts: none (default), fp16, bf16, or "
    "row-wise int8 / int4 / int2 (torch.ops.quantized.embedding_bag_{byte,4bit,2bit}_prepack)";
constexpr const char* kQuantizeTableHelp =
    "TABLE=DTYPE: this table's serving dtype instead of --quantize-embeddings' (repeatable; DTYPE may be none)";

constexpr const char* kFormatHelp =
    "Sparse tables as RecIS safetensors files (default) or as one parallel-HDF5 file OUT/model.h5";
constexpr const char* kReshardHelp =
    "Write every table as M parts, part m holding the ids with id % 65536 in RecIS's gen_slice(m, M), and output "
    "file m holding part m of every table (dense tensors in file 0)";
constexpr const char* kEvictL2BelowHelp =
    "Leave out the rows whose embedding's L2 norm (float32) is below T; every slot of the row goes";
CLI::Validator norm_validator() {  // --evict-l2-below's T
  return CLI::Validator(
      [](std::string& v) -> std::string {
        char* end = nullptr;
        const double t = std::strtod(v.c_str(), &end);
        return !v.empty() && *end == '\0' && t >= 0 && t <= std::numeric_limits<float>::max()
                   ? std::string()
                   : "\"" + v + "\" is not a norm (a number, 0 or more)";
      },
      "T");
}

// --drop-slot names, as a set (sorted and deduplicated in place: the same job spelled in another order gives the
// same manifest); the usage error.
std::optional<std::string> read_drop_slots(std::vector<std::string>& slots) {
  std::sort(slots.begin(), slots.end());
  slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
  for (const auto& slot : slots) {
    if (slot == "id") return std::string("--drop-slot id: the id slot is what makes a table loadable; it cannot be dropped");
    if (slot.empty()) return std::string("--drop-slot needs a slot name");
  }
  return std::nullopt;
}

// --quantize-table TABLE=DTYPE entries (sorted and deduplicated in place) into dtypes.tables; the usage error.
std::optional<std::string> read_table_dtypes(std::vector<std::string>& entries, EmbeddingDTypes& dtypes) {
  std::sort(entries.begin(), entries.end());
  entries.erase(std::unique(entries.begin(), entries.end()), entries.end());
  for (const auto& entry : entries) {
    const size_t equals = entry.rfind('=');
    const std::string table = equals == std::string::npos ? "" : entry.substr(0, equals);
    const auto dtype = equals == std::string::npos ? std::nullopt : parse_serving_dtype(entry.substr(equals + 1));
    if (table.empty() || !dtype) {
      return "--quantize-table \"" + entry + "\": expected TABLE=DTYPE with DTYPE one of none|fp16|bf16|int8|int4|int2";
    }
    auto [it, added] = dtypes.tables.emplace(table, *dtype);
    if (!added && it->second != *dtype) return "--quantize-table gives table \"" + table + "\" two dtypes";
  }
  return std::nullopt;
}

// --stall-timeout, for the export and for verify and merge alike
constexpr const char* kStallTimeoutHelp =
    "Stop the run (exit 6, nothing published) when a rank hears nothing from a peer, or a rank's work does not move, "
    "for this long, naming the ranks and hosts; default 300, 0 for no watchdog";

CLI::Option* checked_stall_timeout(CLI::Option* option) {
  return option->check(CLI::Range(0.0, kMaxStallTimeoutSeconds))->option_text("SECONDS");
}

void add_stall_timeout(CLI::App& app, double& seconds) {
  checked_stall_timeout(app.add_option("--stall-timeout", seconds, kStallTimeoutHelp));
}

// The export command's options, each defined once: the flag with its check and help (which CLI11 also applies to
// --config keys) and how job_config_json records it. `records` lists the recorded ones in definition order.
class ExportOptions {
 public:
  ExportOptions(CLI::App& app, JobOptions& o, FlagValues& flags, ParsingRank rank = ParsingRank::kFirst)
      : app_(app), o_(o), f_(flags), root_input_(rank == ParsingRank::kFirst ? kInputFile : kUncheckedFile) {
    define();
  }

  nlohmann::ordered_json job_config() const {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& [key, record] : records_) {
      if (auto value = record()) j[key] = std::move(*value);
    }
    return j;
  }

 private:
  template <typename T>
  CLI::Option* option(const std::string& flag, T& target, const std::string& help, Recorded record) {
    records_.emplace_back(flag.substr(2), std::move(record));
    return app_.add_option(flag, target, help)->check(kPlainValue);
  }
  CLI::Option* flag(const std::string& names, bool& target, const std::string& help, Recorded record) {
    const size_t long_name = names.find("--");
    records_.emplace_back(names.substr(long_name + 2), std::move(record));
    return app_.add_flag(names, target, help);
  }

  void define() {
    JobOptions& o = o_;
    const auto hugectr = [&o] { return o.source == SourceKind::kHugectr; };
    const auto checkpoint = [&o] { return o.source != SourceKind::kHugectr; };
    const auto best = [&o] { return o.select == CheckpointSelect::kBest; };
    const auto dense = [&o] { return !o.dense_model.empty(); };
    app_.set_version_flag("--version", std::string("recis-convert ") + tool_version());
    option("--ckpt-dir", o.ckpt_dir,
           "RecIS checkpoint directory (ckpt_<step>), or its output directory: then the last line of its "
           "'checkpoint' file names the checkpoint. With --source dcp: a Distributed Checkpoint directory "
           "(.metadata, *.distcp), a TorchEasyRec model.ckpt-<step>, or a model directory (its largest step)",
           only_if(checkpoint, always(o.ckpt_dir)))
        ->option_text("DIR");
    option("--source", o.source,
           "What --ckpt-dir (recis, default; dcp: a TorchEasyRec/torchrec Distributed Checkpoint) or "
           "--graph/--dense/--sparse (hugectr) hold", by_name(kSources, o.source))
        ->transform(one_of(kSources))
        ->option_text("recis|hugectr|dcp");
    option("--graph", o.graph, "With --source hugectr: the model graph JSON (Model.graph_to_json)",
           only_if(hugectr, always(o.graph)))
        ->check(kInputFile)
        ->option_text("FILE");
    option("--dense", o.hugectr_dense,
           "With --source hugectr: the dense weights file (<prefix>_dense_<iter>.model); its size is checked "
           "against the graph", if_given(o.hugectr_dense))
        ->check(kInputFile)
        ->option_text("FILE");
    option("--sparse", o.sparse,
           "With --source hugectr: a sparse model (directory with key/emb_vector[/slot_id], or a legacy file); "
           "one per embedding, in graph order (repeatable)", only_if(hugectr, always(o.sparse)))
        ->option_text("PATH");
    option("--table-names", o.table_names,
           "With --source hugectr: names of the exported tables, comma-separated (default: the embeddings' tops)",
           if_given(o.table_names))
        ->delimiter(',')
        ->option_text("A,B,...");
    option("--export-dir", o.export_dir, "Export directory to create (published atomically at the end)",
           if_given(o.export_dir))
        ->option_text("DIR");
    const auto versioned = [&o] { return !o.publish_root.empty(); };
    option("--publish-root", o.publish_root,
           "Instead of --export-dir: a versioned serving root. Publishes ROOT/<version>, then repoints the symlink "
           "ROOT/current to the newest version and updates ROOT/versions.json",
           if_given(o.publish_root))
        ->option_text("ROOT");
    option("--version-name", o.version_name,
           "With --publish-root: the version's directory name (default: the checkpoint id, e.g. ckpt_2000)",
           only_if(versioned, if_given(o.version_name)))
        ->option_text("NAME");
    option("--keep", o.keep,
           "With --publish-root: keep the newest K versions (by step) and remove older ones this tool published; "
           "never the current one",
           only_if([&o] { return o.keep > 0; }, always(o.keep)))
        ->check(CLI::Range(uint64_t{1}, uint64_t{1000000}))
        ->option_text("K");
    option("--select", o.select,
           "Which checkpoint of an output directory: latest (default) or best (by --metric in --eval-log)",
           by_name(kSelects, o.select))
        ->transform(one_of(kSelects))
        ->option_text("latest|best");
    option("--metric", o.metric, "With --select best: the metric to rank checkpoints by, e.g. auc",
           only_if(best, always(o.metric)))
        ->option_text("NAME");
    auto* larger = flag("--larger-is-better", f_.larger_is_better, "With --select best: larger wins (default)",
                        only_if([&o, best] { return best() && o.metric_order == MetricOrder::kLargerIsBetter; },
                                [] { return nlohmann::ordered_json(true); }));
    flag("--smaller-is-better", f_.smaller_is_better, "With --select best: smaller wins (e.g. a loss)",
         only_if([&o, best] { return best() && o.metric_order == MetricOrder::kSmallerIsBetter; },
                 [] { return nlohmann::ordered_json(true); }))
        ->excludes(larger);
    option("--eval-log", o.eval_log,
           std::string("With --select best: evaluation log, one JSON object per line with global_step and "
                       "metrics; default <ckpt-dir>/") + kDefaultEvalLog,
           only_if(best, always(o.eval_log)))
        ->option_text("FILE");
    option("--format", o.format, kFormatHelp,
           by_name(kFormats, o.format))
        ->transform(one_of(kFormats))
        ->option_text("safetensors|hdf5");
    option("--hdf5-transfer", o.hdf5_transfer,
           "MPI-IO mode of the HDF5 writes: auto (default: independent on local file systems, collective on others), "
           "collective or independent",
           only_if([&o] { return o.format == ExportFormat::kHdf5; }, by_name(kHdf5Transfers, o.hdf5_transfer)))
        ->transform(one_of(kHdf5Transfers))
        ->option_text("auto|collective|independent");
    flag("--filter-optimizer", o.filter_optimizer, kFilterOptimizerHelp, always(o.filter_optimizer));
    option("--drop-slot", o.drop_slots, kDropSlotHelp, always(o.drop_slots))->type_name("NAME");
    option("--quantize-embeddings", o.embedding_dtypes.all, kQuantizeEmbeddingsHelp,
           by_name(kServingDTypes, o.embedding_dtypes.all))
        ->transform(one_of(kServingDTypes))
        ->option_text("none|fp16|bf16|int8|int4|int2");
    option("--quantize-table", o.quantize_tables, kQuantizeTableHelp, always(o.quantize_tables))
        ->type_name("TABLE=DTYPE");
    option("--evict-older-than", f_.evict_older_than,
           "Leave out the rows of a table with a step_filter slot whose last update is more than STEPS before the "
           "table's global step (a row exactly STEPS old stays); every slot of the row goes; --dry-run counts them",
           only_if([&o] { return o.eviction.older_than.has_value(); },
                   [&o] { return nlohmann::ordered_json(o.eviction.older_than.value_or(0)); }))
        ->check(CLI::Validator(
            [](std::string& v) -> std::string {
              return !v.empty() && v.find_first_not_of("0123456789") == std::string::npos
                         ? std::string()
                         : "\"" + v + "\" is not a whole number of steps (0 or more)";
            },
            "STEPS"))
        ->option_text("STEPS");
    option("--evict-l2-below", f_.evict_l2_below, kEvictL2BelowHelp,
           only_if([&o] { return o.eviction.l2_below.has_value(); },
                   [&o] { return nlohmann::ordered_json(o.eviction.l2_below.value_or(0.0f)); }))
        ->check(norm_validator())
        ->option_text("T");
    option("--delta-since", o.delta_since,
           "A delta export: only the rows of each table with a step_filter slot that were updated after STEP, or "
           "after the step of the export BASE_EXPORT (its manifest's \"step\"); tables without the slot go whole",
           if_given(o.delta_since))
        ->option_text("STEP|BASE_EXPORT");
    option("--reshard", o.reshard, kReshardHelp,
           only_if([&o] { return o.reshard != 0; }, always(o.reshard)))
        ->check(CLI::Range(1, 65536))
        ->option_text("M");
    option("--fg", o.fg, "FG config to ship as fg.json", if_given(o.fg))->check(root_input_)->option_text("FILE");
    option("--mc", o.mc, "MC config to ship as input_columns.json", if_given(o.mc))
        ->check(root_input_)
        ->option_text("FILE");
    option("--asset-files", o.asset_files,
           "Extra files to ship in the export under their own names (vocabularies...), comma-separated",
           if_given(o.asset_files))
        ->delimiter(',')
        ->check(root_input_)
        ->option_text("A,B,...");
    option("--dense-model", o.dense_model,
           "Dense architecture as TorchScript (torch.jit.script(model.dense_arch).save(...)): exported frozen "
           "with the checkpoint's model.pt weights; without it there is no dense export", if_given(o.dense_model))
        ->check(root_input_)
        ->option_text("FILE");
    option("--dense-name", o.dense_name, "Prefix of the dense weights in model.pt, default dense_arch",
           only_if(dense, always(o.dense_name)))
        ->option_text("NAME");
    option("--export-folder", o.export_folder, "Folder of the dense export, default fx_user_model",
           only_if(dense, always(o.export_folder)))
        ->option_text("NAME");
    option("--model-name", o.model_name, "File name (without .pt) of the frozen model, default user_model",
           only_if(dense, always(o.model_name)))
        ->option_text("NAME");
    option("--outputs", o.outputs, "Names of the model outputs, comma-separated (default torch_output_<i>)",
           only_if(dense, if_given(o.outputs)))
        ->delimiter(',')
        ->option_text("A,B,...");
    option("--sample-inputs", o.sample_inputs,
           "Sample inputs (safetensors, one tensor per forward argument); default: random, sized from --fg/--mc",
           only_if(dense, if_given(o.sample_inputs)))
        ->check(root_input_)
        ->option_text("FILE");
    option("--sample-batch", o.sample_batch, "Batch of synthesized sample inputs, default 8",
           only_if(dense, always(o.sample_batch)))
        ->check(CLI::Range(1, 65536))
        ->option_text("N");
    option("--balance", o.balance, kBalanceHelp, by_name(kBalances, o.balance))
        ->transform(one_of(kBalances))
        ->option_text("round-robin|size");
    option("--buffer-mib", o.buffer_mib, "Copy buffer per rank in MiB (bounds memory), default 8", always(o.buffer_mib))
        ->check(CLI::Range(1, 4096))
        ->option_text("MIB");
    option("--chunk-mib", o.chunk_mib,
           "Piece size in MiB: a file larger than a rank's fair share is split into pieces written by several "
           "ranks, and checksums are taken per piece (manifest.json says so); 0: whole files only, default 64",
           always(o.chunk_mib))
        ->check(CLI::Range(0, 1 << 20))
        ->option_text("MIB");
    option("--copy-method", o.copy_method, "How unchanged bytes are copied and hashed. auto (default): by the file systems: copy_file_range "
           "sharing extents on one XFS or btrfs, in cache-sized windows on one other file system, a read/write loop "
           "between two; kernel: copy_file_range even between file systems; buffered: the read/write loop. The "
           "run record says which path and why",
           by_name(kCopyMethods, o.copy_method))
        ->transform(one_of(kCopyMethods))
        ->option_text("auto|kernel|buffered");
    flag("--no-fsync", f_.no_fsync, "Do not fsync exported files before publishing (faster, not crash-safe)",
         [&o] { return nlohmann::ordered_json(!o.fsync); });
    flag("--overwrite", o.overwrite, "Replace an existing export directory (swapped in atomically)",
         always(o.overwrite));
    flag("--resume", o.resume,
         "Keep the staging directory when interrupted, and go on from it: a later --resume run with the same options "
         "and source adopts the files (row tables: ranges of rows) it journaled, after checking them, and does only "
         "the rest",
         always(o.resume));
    flag("--dry-run", o.dry_run, "Check the checkpoint, print the plan and what would be dropped; write nothing",
         always(o.dry_run));
    app_.set_config("--config", "", "Job config (JSON): keys are the long option names; flags override it")
        ->check(kPlainValue)
        ->check(kInputFile)
        ->option_text("FILE");
    app_.config_formatter(std::make_shared<StrictJsonConfig>(app_));
    app_.allow_config_extras(false);
    option("--report", o.report,
           "Also write the run record (options, checkpoint chosen, per-rank work, timings, errors, exit status) "
           "to FILE, on failure too", kNotRecorded)
        ->option_text("FILE");
    option("--progress-interval", o.progress_interval,
           "Seconds between progress lines (bytes, GiB/s, ETA, files; all ranks), default 5; 0 for none",
           always(o.progress_interval))
        ->check(CLI::Range(0.0, 86400.0))
        ->option_text("SECONDS");
    checked_stall_timeout(option("--stall-timeout", o.stall_timeout, kStallTimeoutHelp, always(o.stall_timeout)));
    option("--debug-fail-at", o.debug_fail_at, "test-only fault injection", kNotRecorded)->group("");  // hidden
    flag("-q,--quiet", o.quiet, "Only errors and warnings", kNotRecorded);
    flag("-v,--verbose", o.verbose, "Per-file lines from every rank", kNotRecorded);
  }

  CLI::App& app_;
  JobOptions& o_;
  FlagValues& f_;
  const CLI::Validator& root_input_;  // the check of the files only rank 0 reads (kUncheckedFile off rank 0)
  std::vector<std::pair<std::string, Recorded>> records_;
};

}  // namespace

std::vector<NamedPath> JobOptions::inputs() const {
  std::vector<NamedPath> out;
  for (const auto& [path, what] : {std::pair{graph, "the HugeCTR graph"}, std::pair{hugectr_dense, "the HugeCTR dense file"},
                                   std::pair{eval_log, "the evaluation log"}, std::pair{fg, "the fg config"},
                                   std::pair{mc, "the mc config"}, std::pair{dense_model, "the dense model"},
                                   std::pair{sample_inputs, "the sample inputs"}}) {
    out.push_back({path, what});
  }
  for (const auto& path : sparse) out.push_back({path, "a HugeCTR sparse model"});
  for (const auto& path : asset_files) out.push_back({path, "an asset file"});
  if (is_delta() && is_directory(delta_since)) out.push_back({delta_since, "the delta's base export"});
  return out;
}

nlohmann::ordered_json job_config_json(const JobOptions& options) {
  CLI::App app;
  JobOptions o = options;
  FlagValues flags;
  return ExportOptions(app, o, flags).job_config();
}

namespace {

// Runs a CLI11 parse of `command`'s arguments, turning --help/--version and errors into a CommandLine that says
// to exit; nullopt when parsing succeeded.
std::optional<CommandLine> parse_or_exit(CLI::App& app, int argc, const char* const* argv,
                                         CommandLine::Command command) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    CommandLine out;
    out.command = command;
    out.action = CommandLine::Action::kExit;
    out.message = app.help();
    return out;
  } catch (const CLI::CallForVersion&) {
    CommandLine out;
    out.command = command;
    out.action = CommandLine::Action::kExit;
    out.message = std::string("recis-convert ") + tool_version() + "\n";
    return out;
  } catch (const CLI::ParseError& e) {
    CommandLine out = usage(std::string(e.what()) + " (see --help)");
    out.command = command;
    return out;
  }
  return std::nullopt;
}

CommandLine parse_inspect(int argc, const char* const* argv) {
  CommandLine out;
  out.command = CommandLine::Command::kInspect;
  CLI::App app{"recis-convert inspect: what a RecIS checkpoint (ckpt_<step>, or an output directory: its latest) or a\n"
               "recis-convert export holds: tables with rows, dim, dtype and bytes per slot, the optimizer, data\n"
               "files, and the dense tensors of model.pt. Also a PyTorch Distributed Checkpoint (TorchEasyRec's\n"
               "model.ckpt-<step>/ or model directory: its latest step): its tables, their sharding layout and\n"
               "managed-collision buffers, and its dense tensors. Reads headers only; needs no MPI.\n\n"
               "Exit codes: 0 success, 2 usage, 3 unreadable or invalid input.",
               "recis-convert inspect"};
  app.add_option("path", out.inspect.path, "Checkpoint, output directory, export or DCP checkpoint")
      ->required()
      ->check(kPlainValue)
      ->option_text("PATH");
  app.add_flag("--json", out.inspect.json, "Print JSON instead of text");
  if (auto exit = parse_or_exit(app, argc, argv, CommandLine::Command::kInspect)) return *exit;
  return out;
}

CommandLine parse_verify(int argc, const char* const* argv) {
  CommandLine out;
  out.command = CommandLine::Command::kVerify;
  CLI::App app{"recis-convert verify: whether an export is what its manifest.json says, before a serving system\n"
               "loads it: every file's size and checksum (their pieces shared among the ranks under mpirun), no file\n"
               "missing or extra, index / tensorkey.json / the torch_rank json regenerated from the data files, and\n"
               "the frozen dense model re-scoring its sample_io.safetensors within 1e-6. Lists every problem.\n\n"
               "Exit codes: 0 the export is intact, 2 usage, 3 problems found (or no manifest), 5 interrupted,\n"
               "6 stalled (--stall-timeout).",
               "recis-convert verify"};
  app.add_option("export_dir", out.verify.export_dir, "Export directory")
      ->required()
      ->check(kPlainValue)
      ->option_text("OUT");
  app.add_flag("-q,--quiet", out.verify.quiet, "Only problems");
  add_stall_timeout(app, out.verify.stall_timeout);
  if (auto exit = parse_or_exit(app, argc, argv, CommandLine::Command::kVerify)) return *exit;
  return out;
}

CommandLine parse_merge(int argc, const char* const* argv) {
  CommandLine out;
  out.command = CommandLine::Command::kMerge;
  MergeOptions& o = out.merge;
  CLI::App app{"recis-convert merge: the full export a serving system holds after applying delta exports\n"
               "(--delta-since) to a full export, in order. A delta row replaces the row of the same id in every\n"
               "slot; a new id is appended to the part whose slice holds id % 65536. The base's files and parts are\n"
               "kept (with --reshard M: M new ones); the dense export, fg and mc come from the newest export that\n"
               "has them (into model.h5: no /dense group, as an export holds no model.pt). Run under MPI: the\n"
               "base's files are split over the ranks; the result is the same whatever their number.\n\n"
               "Exit codes: 0 success, 1 internal error, 2 usage, 3 bad input (a delta out of order or onto the\n"
               "wrong base, another serving dtype), 4 output error, 5 interrupted, 6 stalled (--stall-timeout).",
               "recis-convert merge"};
  app.get_formatter()->column_width(34);
  app.add_option("base", o.base, "The full export the deltas apply to")
      ->required()
      ->check(kPlainValue)
      ->check(CLI::ExistingDirectory);
  app.add_option("deltas", o.deltas, "Delta exports, in the order they apply")
      ->required()
      ->check(kPlainValue)
      ->check(CLI::ExistingDirectory)
      ->option_text("DELTA ...");
  app.add_option("--export-dir", o.export_dir, "Export directory to create (published atomically at the end)")
      ->required()
      ->check(kPlainValue)
      ->option_text("DIR");
  app.add_option("--buffer-mib", o.buffer_mib, "Copy buffer per rank in MiB (bounds memory), default 8")
      ->check(CLI::Range(1, 4096))
      ->option_text("MIB");
  app.add_option("--chunk-mib", o.chunk_mib,
                 "Checksums per piece of this many MiB, as the export's option; 0: whole files, default 64")
      ->check(CLI::Range(0, 1 << 20))
      ->option_text("MIB");
  bool no_fsync = false;
  app.add_flag("--no-fsync", no_fsync, "Do not fsync exported files before publishing (faster, not crash-safe)");
  app.add_flag("--overwrite", o.overwrite, "Replace an existing export directory (swapped in atomically)");
  uint64_t older_than = 0;
  auto* evict = app.add_option("--evict-older-than", older_than,
                               "Leave out the rows of a table with a step_filter slot last updated more than STEPS "
                               "before the merged step (the last delta's), as the export option does")
                    ->check(CLI::NonNegativeNumber)
                    ->option_text("STEPS");
  float l2_below = 0;
  auto* by_norm = app.add_option("--evict-l2-below", l2_below, kEvictL2BelowHelp)->check(norm_validator())->option_text("T");
  app.add_flag("--filter-optimizer", o.filter_optimizer, kFilterOptimizerHelp);
  app.add_option("--drop-slot", o.drop_slots, kDropSlotHelp)->check(kPlainValue)->type_name("NAME");
  app.add_option("--quantize-embeddings", o.embedding_dtypes.all, kQuantizeEmbeddingsHelp)
      ->transform(one_of(kServingDTypes))
      ->option_text("none|fp16|bf16|int8|int4|int2");
  app.add_option("--quantize-table", o.quantize_tables, kQuantizeTableHelp)->check(kPlainValue)->type_name("TABLE=DTYPE");
  app.add_flag("-q,--quiet", o.quiet, "Only errors and warnings");
  add_stall_timeout(app, o.stall_timeout);
  app.add_option("--debug-fail-at", o.debug_fail_at, "test-only fault injection")->group("");  // hidden
  app.add_option("--debug-join-kib", o.debug_join_kib, "test-only join memory")->check(CLI::Range(1, 1 << 20))->group("");
  app.add_option("--reshard", o.reshard, kReshardHelp)->check(CLI::Range(1, 65536))->option_text("M");
  app.add_option("--balance", o.balance, kBalanceHelp)->transform(one_of(kBalances))->option_text("round-robin|size");
  app.add_option("--format", o.format, kFormatHelp)->transform(one_of(kFormats))->option_text("safetensors|hdf5");
  if (auto exit = parse_or_exit(app, argc, argv, CommandLine::Command::kMerge)) return *exit;
  if (auto wrong = read_drop_slots(o.drop_slots)) return usage(*wrong);
  if (auto wrong = read_table_dtypes(o.quantize_tables, o.embedding_dtypes)) return usage(*wrong);
  o.fsync = !no_fsync;
  if (evict->count() > 0) o.older_than = older_than;
  if (by_norm->count() > 0) o.l2_below = l2_below;
  if (!o.debug_fail_at.empty()) {
    auto armed = arm_fault(o.debug_fail_at);
    if (!armed) return usage(armed.error().message);
  }
  return out;
}

}  // namespace

double CommandLine::stall_timeout() const {
  switch (command) {
    case Command::kVerify:
      return verify.stall_timeout;
    case Command::kMerge:
      return merge.stall_timeout;
    default:
      return options.stall_timeout;
  }
}

CommandLine parse_command_line(int argc, const char* const* argv, ParsingRank rank) {
  if (argc >= 2 && std::string(argv[1]) == "inspect") return parse_inspect(argc - 1, argv + 1);
  if (argc >= 2 && std::string(argv[1]) == "verify") return parse_verify(argc - 1, argv + 1);
  if (argc >= 2 && std::string(argv[1]) == "merge") return parse_merge(argc - 1, argv + 1);
  CommandLine out;
  JobOptions& o = out.options;
  CLI::App app{kDescription, "recis-convert"};
  app.get_formatter()->column_width(34);
  FlagValues flags;
  ExportOptions defined(app, o, flags, rank);
  if (auto exit = parse_or_exit(app, argc, argv, CommandLine::Command::kExport)) return *exit;
  o.fsync = !flags.no_fsync;
  if (app.get_option("--evict-older-than")->count() > 0) o.eviction.older_than = flags.evict_older_than;
  if (app.get_option("--evict-l2-below")->count() > 0) o.eviction.l2_below = flags.evict_l2_below;
  if (flags.smaller_is_better) o.metric_order = MetricOrder::kSmallerIsBetter;
  if (o.source == SourceKind::kHugectr) {
    if (o.graph.empty() || o.sparse.empty()) return usage("--source hugectr needs --graph and --sparse (see --help)");
    if (!o.ckpt_dir.empty() || o.select == CheckpointSelect::kBest || !o.dense_model.empty()) {
      return usage("--source hugectr does not take --ckpt-dir, --select best or --dense-model");
    }
  } else if (!o.graph.empty() || !o.sparse.empty() || !o.hugectr_dense.empty() || !o.table_names.empty()) {
    return usage("--graph, --dense, --sparse and --table-names go with --source hugectr");
  } else if (o.ckpt_dir.empty()) {
    return usage("--ckpt-dir is required (see --help)");
  }
  if (o.source != SourceKind::kRecis && o.is_delta()) {  // row tables have no step per row
    return usage(o.source == SourceKind::kHugectr
                     ? "--delta-since needs the step_filter slots of a RecIS checkpoint; a HugeCTR model has none"
                     : "--source dcp does not take --delta-since (a Distributed Checkpoint records no step per row)");
  }
  if (o.resume) {
    // A RecIS checkpoint's files are journaled whole (or in pieces), one writer each; row tables' ranges are journaled
    // with the regions they fill, which --reshard places too, and their conversion error. model.h5 is one file every
    // rank writes into, and a checkpoint file's entry holds no error sums of its serving dtype (the manifest's).
    std::string not_with;
    const bool checkpoint = o.source == SourceKind::kRecis;
    if (o.format == ExportFormat::kHdf5) {
      not_with = "--format hdf5 (one file every rank writes into)";
    } else if (o.reshard != 0 && checkpoint) {
      not_with = "--reshard of a checkpoint's files (every rank writes into every part file)";
    } else if ((o.embedding_dtypes.any() || !o.quantize_tables.empty()) && checkpoint) {
      not_with = "serving dtypes of a checkpoint's files (the manifest's error sums cover every row)";
    } else if (o.dry_run) {
      not_with = "--dry-run";
    }
    if (!not_with.empty()) return usage("--resume does not combine with " + not_with);
  }
  if (!o.export_dir.empty() && !o.publish_root.empty()) {
    return usage("--export-dir and --publish-root exclude each other: the version directory is ROOT/<version>");
  }
  if (o.export_dir.empty() && o.publish_root.empty() && !o.dry_run) {
    return usage("--export-dir (or --publish-root) is required (see --help)");
  }
  if (o.publish_root.empty() && (!o.version_name.empty() || o.keep > 0)) {
    return usage("--version-name and --keep go with --publish-root");
  }
  if (!o.publish_root.empty()) {
    if (o.is_delta()) {
      return usage("--publish-root publishes full exports for serving to load whole; a delta goes to --export-dir");
    }
    if (o.source == SourceKind::kHugectr && o.version_name.empty()) {
      return usage("--publish-root with --source hugectr needs --version-name: a HugeCTR model has no checkpoint id");
    }
    if (!o.version_name.empty()) {
      auto named = check_version_name(o.version_name);
      if (!named) return usage("--version-name " + named.error().message);
    }
  }
  if (o.quiet && o.verbose) return usage("--quiet and --verbose exclude each other");
  if (!o.report.empty() && rank == ParsingRank::kFirst) {  // rank 0 writes it: on its node alone, maybe
    const size_t slash = o.report.find_last_of('/');
    const std::string parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : o.report.substr(0, slash));
    struct stat st {};
    if (::stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return usage("--report " + o.report + ": directory " + parent + " does not exist");
    }
    // written on failure too, so checked before anything runs: never into (or over) an input
    // (the whole --ckpt-dir, which may be an output directory whose `checkpoint` file names the checkpoint)
    auto inputs = o.inputs();
    inputs.push_back({o.ckpt_dir, "the checkpoint directory --ckpt-dir"});
    auto apart = check_apart_from_inputs(o.report, inputs);
    if (!apart) return usage("--report " + apart.error().describe());
  }
  if (o.select == CheckpointSelect::kBest) {
    if (o.metric.empty()) return usage("--select best needs --metric NAME (e.g. --metric auc)");
    if (o.eval_log.empty()) o.eval_log = o.ckpt_dir + "/" + kDefaultEvalLog;
  } else if (!o.metric.empty() || !o.eval_log.empty() || flags.larger_is_better || flags.smaller_is_better) {
    return usage("--metric, --eval-log, --larger-is-better and --smaller-is-better go with --select best");
  }
  if (!o.debug_fail_at.empty()) {
    auto armed = arm_fault(o.debug_fail_at);
    if (!armed) return usage(armed.error().message);
  }
  for (const std::string* name : {&o.export_folder, &o.model_name}) {
    if (name->empty() || *name == "." || *name == ".." || name->find('/') != std::string::npos) {
      return usage("--export-folder and --model-name must be plain names, not \"" + *name + "\"");
    }
  }
  std::set<std::string> asset_names;
  for (const auto& asset : o.asset_files) {
    const std::string name = asset.substr(asset.find_last_of('/') + 1);
    static const std::set<std::string> kReserved = {kIndexFile,      kTensorKeyFile,  kTorchRankFile, "manifest.json",
                                                    "run_record.json", "fg.json", "input_columns.json", "model.h5"};
    if (name.empty() || kReserved.count(name) || name == o.export_folder ||
        (name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0)) {
      return usage("--asset-files: \"" + name + "\" would clash with a file the export itself writes");
    }
    if (!asset_names.insert(name).second) return usage("--asset-files: two assets are named \"" + name + "\"");
  }
  if (auto wrong = read_table_dtypes(o.quantize_tables, o.embedding_dtypes)) return usage(*wrong);
  if (auto wrong = read_drop_slots(o.drop_slots)) return usage(*wrong);
  return out;
}

}  // namespace recis_convert
