#include "recis_convert/cli.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "recis_convert/fault_injection.h"
#include "recis_convert/strict_json.h"

#ifndef RECIS_CONVERT_VERSION
#define RECIS_CONVERT_VERSION "0.0.0-dev"
#endif

namespace recis_convert {
namespace {

const char* kDescription =
    "recis-convert: turn a RecIS training checkpoint into a serving export.\n"
    "Run under MPI (mpirun -np N recis-convert ...): data files are split over the ranks, streamed through an\n"
    "optional optimizer-slot filter into a staging directory, and published atomically by rank 0.\n\n"
    "Exit codes: 0 success, 1 internal error, 2 usage, 3 bad or incomplete input, 4 output error\n"
    "(export exists, permission, disk full), 5 interrupted.";

const std::map<std::string, Balance> kBalances = {{"round-robin", Balance::kRoundRobin}, {"size", Balance::kSize}};
const std::map<std::string, ExportFormat> kFormats = {{"safetensors", ExportFormat::kSafetensors},
                                                      {"hdf5", ExportFormat::kHdf5}};
const std::map<std::string, bool> kHdf5Transfers = {{"collective", true}, {"independent", false}};
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
    else if (key == "fg") problem = want_string(o.fg);
    else if (key == "mc") problem = want_string(o.mc);
    else if (key == "filter-optimizer") problem = want_bool(o.filter_optimizer);
    else if (key == "overwrite") problem = want_bool(o.overwrite);
    else if (key == "dry-run") problem = want_bool(o.dry_run);
    else if (key == "quiet") problem = want_bool(o.quiet);
    else if (key == "verbose") problem = want_bool(o.verbose);
    else if (key == "no-fsync") {
      bool no_fsync = false;
      problem = want_bool(no_fsync);
      o.fsync = !no_fsync;
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

CommandLine parse_command_line(int argc, const char* const* argv) {
  CommandLine out;
  JobOptions& o = out.options;
  CLI::App app{kDescription, "recis-convert"};
  app.get_formatter()->column_width(34);
  std::string config_path;
  bool no_fsync = false;
  app.set_version_flag("--version", std::string("recis-convert ") + tool_version());
  app.add_option("--ckpt-dir", o.ckpt_dir,
                 "RecIS checkpoint directory (ckpt_<step>), or its output directory: then the last line of its "
                 "'checkpoint' file names the checkpoint")
      ->option_text("DIR");
  app.add_option("--export-dir", o.export_dir, "Export directory to create (published atomically at the end)")
      ->option_text("DIR");
  app.add_flag("--filter-optimizer", o.filter_optimizer,
               "Drop optimizer state: sparse slots and dense scalars whose name starts with 'sparse_'");
  app.add_option("--drop-slot", o.drop_slots, "Also drop this sparse slot (repeatable), e.g. step_filter")
      ->type_name("NAME");
  app.add_option("--fg", o.fg, "FG config to ship as fg.json")->check(CLI::ExistingFile)->option_text("FILE");
  app.add_option("--mc", o.mc, "MC config to ship as input_columns.json")->check(CLI::ExistingFile)->option_text("FILE");
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
  app.add_option("--debug-fail-at", o.debug_fail_at, "test-only fault injection")->group("");  // hidden
  app.add_flag("-q,--quiet", o.quiet, "Only errors and warnings");
  app.add_flag("-v,--verbose", o.verbose, "Per-file lines from every rank");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    out.action = CommandLine::Action::kExit;
    out.message = app.help();
    return out;
  } catch (const CLI::CallForVersion&) {
    out.action = CommandLine::Action::kExit;
    out.message = std::string("recis-convert ") + tool_version() + "\n";
    return out;
  } catch (const CLI::ParseError& e) {
    return usage(std::string(e.what()) + " (see --help)");
  }
  o.fsync = !no_fsync;

  if (!config_path.empty()) {
    auto text = read_small_file(config_path, 16u << 20);
    if (!text) return usage(text.error().describe());
    auto config = parse_strict_json(text.value(), config_path, "job config");
    if (!config) return usage(config.error().describe());
    std::string problem = apply_config(config.value().value, app, o);
    if (!problem.empty()) return usage(config_path + ": " + problem);
  }
  if (o.ckpt_dir.empty()) return usage("--ckpt-dir is required (see --help)");
  if (o.export_dir.empty() && !o.dry_run) return usage("--export-dir is required (see --help)");
  if (o.buffer_mib < 1 || o.buffer_mib > 4096) return usage("--buffer-mib must be between 1 and 4096");
  if (o.quiet && o.verbose) return usage("--quiet and --verbose exclude each other");
  if (!o.debug_fail_at.empty()) {
    auto armed = arm_fault(o.debug_fail_at);
    if (!armed) return usage(armed.error().message);
  }
  for (const std::string* name : {&o.export_folder, &o.model_name}) {
    if (name->empty() || *name == "." || *name == ".." || name->find('/') != std::string::npos) {
      return usage("--export-folder and --model-name must be plain names, not \"" + *name + "\"");
    }
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
