// --select best: choosing the checkpoint with the best evaluation metric, as TorchEasyRec's exporter_type "best"
// does (torcheasyrec-hugectr.md A.3.3), among RecIS's ckpt_<step> or TorchEasyRec's model.ckpt-<step> directories. The evaluation log has one JSON object per line, `global_step` first and
// then the metrics, e.g. {"global_step": 2000, "auc": 0.7312} (TorchEasyRec's train_eval_result_v2.txt).
//
// Differences from TorchEasyRec, on purpose: a best step whose ckpt_<step> was pruned is skipped (the best step
// still on disk wins) instead of failing; an empty or missing log is an error, never a silent fallback to the
// latest checkpoint (a cron job asked for "best" must not publish something else); a tie goes to the later step;
// a step evaluated twice keeps its last line.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"

namespace recis_convert {

enum class MetricOrder { kLargerIsBetter, kSmallerIsBetter };

struct EvalRecord {
  int64_t global_step = 0;
  double value = 0;  // the chosen metric
  size_t line = 0;   // 1-based, for messages
};

// The records of `metric` in the log text. Lines that are blank are ignored; a line that is not a JSON object
// with an integer "global_step" is an error naming path:line; lines without the metric are skipped, but a log
// where no line has it is an error listing the metrics it does have. All errors are kBadInput.
Result<std::vector<EvalRecord>> parse_eval_log(const std::string& text, const std::string& metric,
                                               const std::string& path);

inline constexpr const char* kRecisCheckpointPrefix = "ckpt_";

struct CheckpointChoice {
  std::string ckpt_id;  // "<prefix><step>": "ckpt_<step>", "model.ckpt-<step>"
  int64_t global_step = 0;
  double value = 0;
  std::string reason;   // one line for the log and the run record
};

// The best record whose checkpoint `exists` (called with "<prefix><step>"); kBadInput naming `log_path` if none
// does.
Result<CheckpointChoice> choose_best_checkpoint(const std::vector<EvalRecord>& records, const std::string& metric,
                                                MetricOrder order, const std::string& log_path,
                                                const std::function<bool(const std::string&)>& exists,
                                                const std::string& prefix = kRecisCheckpointPrefix);

// Reads the log at `log_path` and chooses among the <prefix><step> directories of `output_dir` (a training output
// directory, not a checkpoint: that is an error). Errors are kBadInput.
Result<CheckpointChoice> select_best_checkpoint(const std::string& output_dir, const std::string& log_path,
                                                const std::string& metric, MetricOrder order,
                                                const std::string& prefix = kRecisCheckpointPrefix);

}  // namespace recis_convert
