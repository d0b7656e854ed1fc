// The command line and --config job files, turned into JobOptions once and validated before MPI starts.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "recis_convert/common/file_io.h"
#include "recis_convert/sources/checkpoint_selection.h"
#include "recis_convert/sinks/copy_engine.h"
#include "recis_convert/plan/rank_assignment.h"
#include "recis_convert/transforms/row_eviction.h"
#include "recis_convert/transforms/serving_dtype.h"

namespace recis_convert {

enum class ExportFormat { kSafetensors, kHdf5 };
enum class CheckpointSelect { kLatest, kBest };
enum class SourceKind { kRecis, kHugectr, kDcp };

inline constexpr const char* kDefaultEvalLog = "train_eval_result_v2.txt";  // TorchEasyRec's name, in --ckpt-dir

constexpr size_t kDefaultChunkMib = 64;  // --chunk-mib
// --stall-timeout (mpi/stall_watch.h): long enough that no single read, write or rank-0 step of a healthy run comes
// near it on a slow parallel file system, short next to the hours a partitioned job would otherwise hang; Slurm's
// own SlurmdTimeout, after which it declares a silent node down, is also 300 s by default.
constexpr double kDefaultStallTimeoutSeconds = 300;
constexpr double kMaxStallTimeoutSeconds = 7 * 86400;

// MPI-IO mode of the HDF5 data writes; auto chooses by the file system (sinks/hdf5_export.h).
enum class Hdf5Transfer { kAuto, kCollective, kIndependent };

struct JobOptions {
  SourceKind source = SourceKind::kRecis;
  // --source hugectr (hugectr_export.h): the graph JSON, the dense weights, one sparse model per embedding
  std::string graph;
  std::string hugectr_dense;
  std::vector<std::string> sparse;
  std::vector<std::string> table_names;
  ExportFormat format = ExportFormat::kSafetensors;
  Hdf5Transfer hdf5_transfer = Hdf5Transfer::kAuto;  // --hdf5-transfer auto|collective|independent
  std::string ckpt_dir;
  std::string export_dir;
  // --publish-root ROOT instead of --export-dir (publish/serving_root.h): ROOT/<version> is published, the version
  // being --version-name or the checkpoint id; then ROOT/current and ROOT/versions.json follow, and with --keep K
  // (0: all) only the newest K versions stay
  std::string publish_root;
  std::string version_name;
  uint64_t keep = 0;
  // --select best: the ckpt_<step> of --ckpt-dir (an output directory) with the best --metric in --eval-log
  CheckpointSelect select = CheckpointSelect::kLatest;
  std::string metric;
  MetricOrder metric_order = MetricOrder::kLargerIsBetter;
  std::string eval_log;  // default <ckpt-dir>/train_eval_result_v2.txt
  bool filter_optimizer = false;
  std::vector<std::string> drop_slots;
  // --quantize-embeddings (embedding_dtypes.all) and --quantize-table TABLE=DTYPE (as given, sorted: the job
  // config records these; parse_command_line checks them into embedding_dtypes.tables)
  EmbeddingDTypes embedding_dtypes;
  std::vector<std::string> quantize_tables;
  EvictionRules eviction;  // --evict-older-than, --evict-l2-below
  // --delta-since STEP|BASE_EXPORT, as given ("": a full export); rank 0 resolves it (metadata/delta_base.h)
  std::string delta_since;
  uint32_t reshard = 0;    // --reshard M: every table as M parts (plan/reshard_plan.h); 0 keeps the source's parts
  std::string fg;  // path of fg.json to ship, "" for none
  std::string mc;  // path of the mc config to ship as input_columns.json, "" for none
  std::vector<std::string> asset_files;  // copied into the export under their own names (TorchEasyRec's assets)
  // dense export (only when dense_model is set)
  std::string dense_model;    // TorchScript of the dense architecture
  std::string dense_name = "dense_arch";
  std::string export_folder = "fx_user_model";
  std::string model_name = "user_model";
  std::vector<std::string> outputs;
  std::string sample_inputs;
  int sample_batch = 8;
  Balance balance = Balance::kRoundRobin;
  size_t buffer_mib = 8;
  // --chunk-mib: a file longer than a rank's fair share is split into pieces of this size, written by several
  // ranks; and every file's checksum is taken in pieces of it (checksum.h). 0: whole files, whole-file checksums.
  size_t chunk_mib = kDefaultChunkMib;
  uint64_t piece_bytes() const { return static_cast<uint64_t>(chunk_mib) << 20; }
  CopyMethod copy_method = CopyMethod::kAuto;
  bool fsync = true;
  bool overwrite = false;
  bool resume = false;  // --resume (publish/resume_journal.h): keep the staging directory when interrupted, adopt it
  bool dry_run = false;
  bool quiet = false;
  bool verbose = false;
  std::string report;  // --report FILE: the run record, written on failure too
  double progress_interval = 5;  // seconds between progress lines of rank 0; 0 = none
  double stall_timeout = kDefaultStallTimeoutSeconds;  // --stall-timeout; 0 = no watchdog
  double progress_seconds() const { return quiet ? 0 : progress_interval; }  // what the meters use (0 = none)
  bool is_delta() const { return !delta_since.empty(); }
  // What the job reads besides the checkpoint, as the options name them (config files, assets, the dense model,
  // HugeCTR's files, the evaluation log, a delta's base export): no output may land inside one (publish/staging.h).
  std::vector<NamedPath> inputs() const;
  // Whether some rows of a table may stay out of the export: eviction, or a delta's unchanged rows.
  bool selects_rows() const { return eviction.any() || is_delta(); }
  std::string debug_fail_at;  // test-only fault injection (fault_injection.h), hidden from --help
};

// `recis-convert inspect PATH [--json]`: what a checkpoint or export holds (no MPI needed).
struct InspectOptions {
  std::string path;
  bool json = false;
};

// `recis-convert verify OUT`: whether an export matches its manifest (under mpirun, the files' pieces shared among
// the ranks).
struct VerifyOptions {
  std::string export_dir;
  bool quiet = false;
  double stall_timeout = kDefaultStallTimeoutSeconds;
};

// `recis-convert merge BASE DELTA [DELTA ...] --export-dir OUT` (commands/merge.h).
struct MergeOptions {
  std::string base;
  std::vector<std::string> deltas;  // in the order they apply
  std::string export_dir;
  size_t buffer_mib = 8;
  size_t chunk_mib = kDefaultChunkMib;  // the piece of the checksums (as the export's --chunk-mib)
  uint64_t piece_bytes() const { return static_cast<uint64_t>(chunk_mib) << 20; }
  bool fsync = true;
  bool overwrite = false;
  bool quiet = false;
  double stall_timeout = kDefaultStallTimeoutSeconds;
  std::optional<uint64_t> older_than;  // --evict-older-than STEPS, against the merged step
  std::optional<float> l2_below;       // --evict-l2-below T
  // The export's row transforms, applied to the merged rows (as JobOptions' fields of the same names)
  bool filter_optimizer = false;
  std::vector<std::string> drop_slots;
  EmbeddingDTypes embedding_dtypes;
  std::vector<std::string> quantize_tables;
  uint32_t reshard = 0;  // --reshard M; 0: the base's parts and files
  Balance balance = Balance::kRoundRobin;  // how the base's files are dealt to ranks (as the export's --balance)
  ExportFormat format = ExportFormat::kSafetensors;  // --format
  std::string debug_fail_at;  // test-only fault injection (fault_injection.h), hidden from --help
  size_t debug_join_kib = 0;  // test-only: a part's join memory (part_merge.h), so small parts spill; hidden
};

struct CommandLine {
  enum class Action { kRun, kExit } action = Action::kRun;
  enum class Command { kExport, kInspect, kVerify, kMerge } command = Command::kExport;
  int exit_code = 0;     // for kExit: 0 after --help/--version, 2 after a usage error
  std::string message;   // for kExit: help/version text (stdout) or the usage error (stderr)
  JobOptions options;    // for kRun of kExport
  InspectOptions inspect;  // for kRun of kInspect
  VerifyOptions verify;    // for kRun of kVerify
  MergeOptions merge;      // for kRun of kMerge
  double stall_timeout() const;  // the command's --stall-timeout
};

// Which rank parses: every rank parses the command line before MPI starts, and across nodes each sees its own node's
// files. Only rank 0 reads the job's own inputs (--fg, --mc, --asset-files, --dense-model, --sample-inputs) and
// writes --report, so only the first rank (by the launcher's environment) checks they exist; the checkpoint and a
// --config file every rank reads, and checks.
enum class ParsingRank { kFirst, kOther };

// Parses argv; a --config JSON file supplies options not given as flags (flags win). Never exits the process.
CommandLine parse_command_line(int argc, const char* const* argv, ParsingRank rank = ParsingRank::kFirst);

const char* tool_version();

// The job as a --config file would spell it (long option names as keys), for run records: feeding a record's
// "options" back as --config reruns the same job.
nlohmann::ordered_json job_config_json(const JobOptions& options);

}  // namespace recis_convert
