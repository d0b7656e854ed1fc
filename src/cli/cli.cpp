#include "recis_convert/cli/cli.h"

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <nlohmann/json.hpp>

#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/common/fault_injection.h"
#include "recis_convert/formats/strict_json.h"

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
    "      recis-convert verify OUT                (does an export match its manifest; see verify --help)\n\n"
    "Exit codes: 0 success, 1 internal error, 2 usage, 3 bad or incomplete input, 4 output error\n"
    "(export exists, permission, disk full), 5 interrupted.";

const std::map<std::string, Balance> kBalances = {{"round-robin", Balance::kRoundRobin}, {"size", Balance::kSize}};
const std::map<std::string, ExportFormat> kFormats = {{"safetensors", ExportFormat::kSafetensors},
                                                      {"hdf5", ExportFormat::kHdf5}};
const std::map<std::string, bool> kQuantizations = {{"none", false}, {"int8", true}};
const std::map<std::string, bool> kHdf5Transfers = {{"collective", true}, {"independent", false}};
const std::map<std::string, SourceKind> kSources = {{"recis", SourceKind::kRecis}, {"hugectr", SourceKind::kHugectr}};
const std::map<std::string, CheckpointSelect> kSelects = {{"latest", CheckpointSelect::kLatest},
                                                          {"best", CheckpointSelect::kBest}};
const std::map<std::string, CopyMethod> kCopyMethods = {
    {"auto", CopyMethod::kAuto}, {"kernel", CopyMethod::kKernel}, {"buffered", CopyMethod::kBuffered}};

CommandLine usage(std::string message) {
  CommandLine out;
  out.action = CommandLine::Action::kExit;
  out.exit_code = 2;
  out.message = std::move(message);
  return out;
}

// Applies the keys of a --config file to options whose flag was not given. Keys are the long flag names.
std::string apply_config(const nlohmann::json& config, CLI::App& app, JobOptions& o) {
  if (!config.is_object()) return "the job config is not a JSON object";
  for (auto item = config.begin(); item != config.end(); ++item) {
    // Named copies, not structured bindings: C++17 lambdas (below) cannot capture those (clang rejects it).
    const std::string key = item.key();
    const nlohmann::json& value = item.value();
    CLI::Option* opt = nullptr;
    try {
      opt = app.get_option("--" + key);
    } catch (const CLI::Error&) {
      return "unknown key \"" + key + "\" in the job config";
    }
    if (opt->count() > 0 || key == "config") continue;  // the command line wins
    auto want_string = [&](std::string& target) -> std::string {
      if (!value.is_string()) return "\"" + key + "\" must be a string in the job config";
      target = value.get<std::string>();
      return "";
    };
    auto want_bool = [&](bool& target) -> std::string {
      if (!value.is_boolean()) return "\"" + key + "\" must be true or false in the job config";
      target = value.get<bool>();
      return "";
    };
    // An enumerated value ("balance": "size"...), checked against the same table the flag uses.
    auto want_choice = [&](const auto& choices, auto& target, const char* allowed) -> std::string {
      std::string text;
      std::string problem = want_string(text);
      if (!problem.empty()) return problem;
      auto it = choices.find(text);
      if (it == choices.end()) return "\"" + key + "\" must be " + allowed + " in the job config";
      target = it->second;
      return "";
    };
    std::string problem;
    if (key == "ckpt-dir") problem = want_string(o.ckpt_dir);
    else if (key == "dense-model") problem = want_string(o.dense_model);
    else if (key == "dense-name") problem = want_string(o.dense_name);
    else if (key == "export-folder") problem = want_string(o.export_folder);
    else if (key == "model-name") problem = want_string(o.model_name);
    else if (key == "sample-inputs") problem = want_string(o.sample_inputs);
    else if (key == "sample-batch") {
      if (!value.is_number_unsigned() || value.get<uint64_t>() < 1 || value.get<uint64_t>() > 65536) {
        return "\"sample-batch\" must be an integer from 1 to 65536 in the job config";
      }
      o.sample_batch = value.get<int>();
    } else if (key == "outputs") {
      if (!value.is_array()) return "\"outputs\" must be a list of names in the job config";
      for (const auto& name : value) {
        if (!name.is_string()) return "\"outputs\" must be a list of names in the job config";
        o.outputs.push_back(name.get<std::string>());
      }
    }
    else if (key == "export-dir") problem = want_string(o.export_dir);
    else if (key == "select") problem = want_choice(kSelects, o.select, "latest or best");
    else if (key == "source") problem = want_choice(kSources, o.source, "recis or hugectr");
    else if (key == "graph") problem = want_string(o.graph);
    else if (key == "dense") problem = want_string(o.hugectr_dense);
    else if (key == "sparse" || key == "table-names") {
      auto& target = key == "sparse" ? o.sparse : o.table_names;
      if (!value.is_array()) return "\"" + key + "\" must be a list of strings in the job config";
      for (const auto& entry : value) {
        if (!entry.is_string()) return "\"" + key + "\" must be a list of strings in the job config";
        target.push_back(entry.get<std::string>());
      }
    }
    else if (key == "metric") problem = want_string(o.metric);
    else if (key == "eval-log") problem = want_string(o.eval_log);
    else if (key == "larger-is-better" || key == "smaller-is-better") {
      bool set = false;
      problem = want_bool(set);
      if (set) o.metric_order = key == "larger-is-better" ? MetricOrder::kLargerIsBetter : MetricOrder::kSmallerIsBetter;
    }
    else if (key == "fg") problem = want_string(o.fg);
    else if (key == "mc") problem = want_string(o.mc);
    else if (key == "filter-optimizer") problem = want_bool(o.filter_optimizer);
    else if (key == "overwrite") problem = want_bool(o.overwrite);
    else if (key == "dry-run") problem = want_bool(o.dry_run);
    else if (key == "quiet") problem = want_bool(o.quiet);
    else if (key == "report") problem = want_string(o.report);
    else if (key == "progress-interval") {
      if (!value.is_number() || value.get<double>() < 0 || value.get<double>() > 86400) {
        return "\"progress-interval\" must be a number of seconds from 0 to 86400 in the job config";
      }
      o.progress_interval = value.get<double>();
    }
    else if (key == "verbose") problem = want_bool(o.verbose);
    else if (key == "no-fsync") {
      bool no_fsync = false;
      problem = want_bool(no_fsync);
      o.fsync = !no_fsync;
    } else if (key == "asset-files") {
      if (!value.is_array()) return "\"asset-files\" must be a list of file paths in the job config";
      for (const auto& file : value) {
        if (!file.is_string()) return "\"asset-files\" must be a list of file paths in the job config";
        o.asset_files.push_back(file.get<std::string>());
      }
    } else if (key == "drop-slot") {
      if (!value.is_array()) return "\"drop-slot\" must be a list of slot names in the job config";
      for (const auto& slot : value) {
        if (!slot.is_string()) return "\"drop-slot\" must be a list of slot names in the job config";
        o.drop_slots.push_back(slot.get<std::string>());
      }
    } else if (key == "buffer-mib") {
      if (!value.is_number_unsigned()) return "\"buffer-mib\" must be a positive integer in the job config";
      o.buffer_mib = value.get<size_t>();
    } else if (key == "format") {
      problem = want_choice(kFormats, o.format, "safetensors or hdf5");
    } else if (key == "quantize-embeddings") {
      problem = want_choice(kQuantizations, o.quantize_int8, "none or int8");
    } else if (key == "hdf5-transfer") {
      problem = want_choice(kHdf5Transfers, o.hdf5_collective, "collective or independent");
    } else if (key == "balance") {
      problem = want_choice(kBalances, o.balance, "round-robin or size");
    } else if (key == "copy-method") {
      problem = want_choice(kCopyMethods, o.copy_method, "auto, kernel or buffered");
    } else {
      return "key \"" + key + "\" cannot be set in the job config";
    }
    if (!problem.empty()) return problem;
  }
  return "";
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

}  // namespace

nlohmann::ordered_json job_config_json(const JobOptions& o) {
  nlohmann::ordered_json j;
  j["source"] = name_of(kSources, o.source);
  if (o.source == SourceKind::kHugectr) {
    j["graph"] = o.graph;
    if (!o.hugectr_dense.empty()) j["dense"] = o.hugectr_dense;
    j["sparse"] = o.sparse;
    if (!o.table_names.empty()) j["table-names"] = o.table_names;
  } else {
    j["ckpt-dir"] = o.ckpt_dir;
  }
  j["export-dir"] = o.export_dir;
  j["select"] = name_of(kSelects, o.select);
  if (o.select == CheckpointSelect::kBest) {
    j["metric"] = o.metric;
    j[o.metric_order == MetricOrder::kLargerIsBetter ? "larger-is-better" : "smaller-is-better"] = true;
    j["eval-log"] = o.eval_log;
  }
  j["format"] = name_of(kFormats, o.format);
  if (o.format == ExportFormat::kHdf5) j["hdf5-transfer"] = name_of(kHdf5Transfers, o.hdf5_collective);
  j["filter-optimizer"] = o.filter_optimizer;
  j["drop-slot"] = o.drop_slots;
  j["quantize-embeddings"] = name_of(kQuantizations, o.quantize_int8);
  if (!o.fg.empty()) j["fg"] = o.fg;
  if (!o.mc.empty()) j["mc"] = o.mc;
  if (!o.asset_files.empty()) j["asset-files"] = o.asset_files;
  if (!o.dense_model.empty()) {
    j["dense-model"] = o.dense_model;
    j["dense-name"] = o.dense_name;
    j["export-folder"] = o.export_folder;
    j["model-name"] = o.model_name;
    if (!o.outputs.empty()) j["outputs"] = o.outputs;
    if (!o.sample_inputs.empty()) j["sample-inputs"] = o.sample_inputs;
    j["sample-batch"] = o.sample_batch;
  }
  j["balance"] = name_of(kBalances, o.balance);
  j["buffer-mib"] = o.buffer_mib;
  j["copy-method"] = name_of(kCopyMethods, o.copy_method);
  j["no-fsync"] = !o.fsync;
  j["overwrite"] = o.overwrite;
  j["dry-run"] = o.dry_run;
  j["progress-interval"] = o.progress_interval;
  return j;
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
               "files, and the dense tensors of model.pt. Reads headers only; needs no MPI.\n\n"
               "Exit codes: 0 success, 2 usage, 3 unreadable or invalid input.",
               "recis-convert inspect"};
  app.add_option("path", out.inspect.path, "Checkpoint, output directory or export")->required()->option_text("PATH");
  app.add_flag("--json", out.inspect.json, "Print JSON instead of text");
  if (auto exit = parse_or_exit(app, argc, argv, CommandLine::Command::kInspect)) return *exit;
  return out;
}

CommandLine parse_verify(int argc, const char* const* argv) {
  CommandLine out;
  out.command = CommandLine::Command::kVerify;
  CLI::App app{"recis-convert verify: whether an export is what its manifest.json says, before a serving system\n"
               "loads it: every file's size and XXH3-64 checksum (files split over the ranks under mpirun), no file\n"
               "missing or extra, index / tensorkey.json / the torch_rank json regenerated from the data files, and\n"
               "the frozen dense model re-scoring its sample_io.safetensors within 1e-6. Lists every problem.\n\n"
               "Exit codes: 0 the export is intact, 2 usage, 3 problems found (or no manifest), 5 interrupted.",
               "recis-convert verify"};
  app.add_option("export_dir", out.verify.export_dir, "Export directory")->required()->option_text("OUT");
  app.add_flag("-q,--quiet", out.verify.quiet, "Only problems");
  if (auto exit = parse_or_exit(app, argc, argv, CommandLine::Command::kVerify)) return *exit;
  return out;
}

}  // namespace

CommandLine parse_command_line(int argc, const char* const* argv) {
  if (argc >= 2 && std::string(argv[1]) == "inspect") return parse_inspect(argc - 1, argv + 1);
  if (argc >= 2 && std::string(argv[1]) == "verify") return parse_verify(argc - 1, argv + 1);
  CommandLine out;
  JobOptions& o = out.options;
  CLI::App app{kDescription, "recis-convert"};
  app.get_formatter()->column_width(34);
  std::string config_path;
  bool no_fsync = false;
  bool larger_is_better = false, smaller_is_better = false;
  app.set_version_flag("--version", std::string("recis-convert ") + tool_version());
  app.add_option("--ckpt-dir", o.ckpt_dir,
                 "RecIS checkpoint directory (ckpt_<step>), or its output directory: then the last line of its "
                 "'checkpoint' file names the checkpoint")
      ->option_text("DIR");
  app.add_option("--source", o.source,
                 "What --ckpt-dir (recis, default) or --graph/--dense/--sparse (hugectr) hold")
      ->transform(CLI::CheckedTransformer(kSources, CLI::ignore_case))
      ->option_text("recis|hugectr");
  app.add_option("--graph", o.graph, "With --source hugectr: the model graph JSON (Model.graph_to_json)")
      ->check(CLI::ExistingFile)
      ->option_text("FILE");
  app.add_option("--dense", o.hugectr_dense,
                 "With --source hugectr: the dense weights file (<prefix>_dense_<iter>.model); its size is checked "
                 "against the graph")
      ->check(CLI::ExistingFile)
      ->option_text("FILE");
  app.add_option("--sparse", o.sparse,
                 "With --source hugectr: a sparse model (directory with key/emb_vector[/slot_id], or a legacy file); "
                 "one per embedding, in graph order (repeatable)")
      ->option_text("PATH");
  app.add_option("--table-names", o.table_names,
                 "With --source hugectr: names of the exported tables, comma-separated (default: the embeddings' tops)")
      ->delimiter(',')
      ->option_text("A,B,...");
  app.add_option("--select", o.select,
                 "Which checkpoint of an output directory: latest (default) or best (by --metric in --eval-log)")
      ->transform(CLI::CheckedTransformer(kSelects, CLI::ignore_case))
      ->option_text("latest|best");
  app.add_option("--metric", o.metric, "With --select best: the metric to rank checkpoints by, e.g. auc")
      ->option_text("NAME");
  auto* larger = app.add_flag("--larger-is-better", larger_is_better, "With --select best: larger wins (default)");
  app.add_flag("--smaller-is-better", smaller_is_better, "With --select best: smaller wins (e.g. a loss)")
      ->excludes(larger);
  app.add_option("--eval-log", o.eval_log,
                 std::string("With --select best: evaluation log, one JSON object per line with global_step and "
                             "metrics; default <ckpt-dir>/") + kDefaultEvalLog)
      ->option_text("FILE");
  app.add_option("--export-dir", o.export_dir, "Export directory to create (published atomically at the end)")
      ->option_text("DIR");
  app.add_flag("--filter-optimizer", o.filter_optimizer,
               "Drop optimizer state: sparse slots and dense scalars whose name starts with 'sparse_'");
  app.add_option("--drop-slot", o.drop_slots, "Also drop this sparse slot (repeatable), e.g. step_filter")
      ->type_name("NAME");
  app.add_option("--fg", o.fg, "FG config to ship as fg.json")->check(CLI::ExistingFile)->option_text("FILE");
  app.add_option("--mc", o.mc, "MC config to ship as input_columns.json")->check(CLI::ExistingFile)->option_text("FILE");
  app.add_option("--quantize-embeddings", o.quantize_int8,
                 "none (default) or int8: embedding rows as uint8 codes + float32 scale and bias per row, the layout "
                 "of torch.ops.quantized.embedding_bag_byte_prepack")
      ->transform(CLI::CheckedTransformer(kQuantizations, CLI::ignore_case))
      ->option_text("none|int8");
  app.add_option("--asset-files", o.asset_files,
                 "Extra files to ship in the export under their own names (vocabularies...), comma-separated")
      ->delimiter(',')
      ->check(CLI::ExistingFile)
      ->option_text("A,B,...");
  app.add_option("--format", o.format,
                 "Sparse tables as RecIS safetensors files (default) or as one parallel-HDF5 file OUT/model.h5")
      ->transform(CLI::CheckedTransformer(kFormats, CLI::ignore_case))
      ->option_text("safetensors|hdf5");
  app.add_option("--hdf5-transfer", o.hdf5_collective,
                 "MPI-IO mode of the HDF5 writes: collective (default) or independent")
      ->transform(CLI::CheckedTransformer(kHdf5Transfers, CLI::ignore_case))
      ->option_text("collective|independent");
  app.add_option("--dense-model", o.dense_model,
                 "Dense architecture as TorchScript (torch.jit.script(model.dense_arch).save(...)): exported frozen "
                 "with the checkpoint's model.pt weights; without it there is no dense export")
      ->check(CLI::ExistingFile)
      ->option_text("FILE");
  app.add_option("--dense-name", o.dense_name, "Prefix of the dense weights in model.pt, default dense_arch")
      ->option_text("NAME");
  app.add_option("--export-folder", o.export_folder, "Folder of the dense export, default fx_user_model")
      ->option_text("NAME");
  app.add_option("--model-name", o.model_name, "File name (without .pt) of the frozen model, default user_model")
      ->option_text("NAME");
  app.add_option("--outputs", o.outputs, "Names of the model outputs, comma-separated (default torch_output_<i>)")
      ->delimiter(',')
      ->option_text("A,B,...");
  app.add_option("--sample-inputs", o.sample_inputs,
                 "Sample inputs (safetensors, one tensor per forward argument); default: random, sized from --fg/--mc")
      ->check(CLI::ExistingFile)
      ->option_text("FILE");
  app.add_option("--sample-batch", o.sample_batch, "Batch of synthesized sample inputs, default 8")
      ->check(CLI::Range(1, 65536))
      ->option_text("N");
  app.add_option("--balance", o.balance, "How files are dealt to ranks: round-robin (default) or size")
      ->transform(CLI::CheckedTransformer(kBalances, CLI::ignore_case))
      ->option_text("round-robin|size");
  app.add_option("--buffer-mib", o.buffer_mib, "Copy buffer per rank in MiB (bounds memory), default 8")
      ->check(CLI::Range(1, 4096))
      ->option_text("MIB");
  app.add_option("--copy-method", o.copy_method,
                 "auto (copy_file_range, else buffered; default), kernel, or buffered")
      ->transform(CLI::CheckedTransformer(kCopyMethods, CLI::ignore_case))
      ->option_text("auto|kernel|buffered");
  app.add_flag("--no-fsync", no_fsync, "Do not fsync exported files before publishing (faster, not crash-safe)");
  app.add_flag("--overwrite", o.overwrite, "Replace an existing export directory (swapped in atomically)");
  app.add_flag("--dry-run", o.dry_run, "Check the checkpoint, print the plan and what would be dropped; write nothing");
  app.add_option("--config", config_path, "Job config (JSON): keys are the long option names; flags override it")
      ->check(CLI::ExistingFile)
      ->option_text("FILE");
  app.add_option("--report", o.report,
                 "Also write the run record (options, checkpoint chosen, per-rank work, timings, errors, exit status) "
                 "to FILE, on failure too")
      ->option_text("FILE");
  app.add_option("--progress-interval", o.progress_interval,
                 "Seconds between progress lines (bytes, GiB/s, ETA, files; all ranks), default 5; 0 for none")
      ->check(CLI::Range(0.0, 86400.0))
      ->option_text("SECONDS");
  app.add_option("--debug-fail-at", o.debug_fail_at, "test-only fault injection")->group("");  // hidden
  app.add_flag("-q,--quiet", o.quiet, "Only errors and warnings");
  app.add_flag("-v,--verbose", o.verbose, "Per-file lines from every rank");

  if (auto exit = parse_or_exit(app, argc, argv, CommandLine::Command::kExport)) return *exit;
  o.fsync = !no_fsync;
  if (smaller_is_better) o.metric_order = MetricOrder::kSmallerIsBetter;

  if (!config_path.empty()) {
    auto text = read_small_file(config_path, 16u << 20);
    if (!text) return usage(text.error().describe());
    auto config = parse_strict_json(text.value(), config_path, "job config");
    if (!config) return usage(config.error().describe());
    std::string problem = apply_config(config.value().value, app, o);
    if (!problem.empty()) return usage(config_path + ": " + problem);
  }
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
  if (o.export_dir.empty() && !o.dry_run) return usage("--export-dir is required (see --help)");
  if (o.buffer_mib < 1 || o.buffer_mib > 4096) return usage("--buffer-mib must be between 1 and 4096");
  if (o.quiet && o.verbose) return usage("--quiet and --verbose exclude each other");
  if (!o.report.empty()) {
    const size_t slash = o.report.find_last_of('/');
    const std::string parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : o.report.substr(0, slash));
    struct stat st {};
    if (::stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return usage("--report " + o.report + ": directory " + parent + " does not exist");
    }
  }
  if (o.select == CheckpointSelect::kBest) {
    if (o.metric.empty()) return usage("--select best needs --metric NAME (e.g. --metric auc)");
    if (o.eval_log.empty()) o.eval_log = o.ckpt_dir + "/" + kDefaultEvalLog;
  } else if (!o.metric.empty() || !o.eval_log.empty() || larger_is_better || smaller_is_better) {
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
  // A set, not a sequence: the same job spelled in another order gives the same manifest.
  std::sort(o.drop_slots.begin(), o.drop_slots.end());
  o.drop_slots.erase(std::unique(o.drop_slots.begin(), o.drop_slots.end()), o.drop_slots.end());
  for (const auto& slot : o.drop_slots) {
    if (slot == "id") return usage("--drop-slot id: the id slot is what makes a table loadable; it cannot be dropped");
    if (slot.empty()) return usage("--drop-slot needs a slot name");
  }
  return out;
}

}  // namespace recis_convert
