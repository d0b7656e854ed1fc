#include "recis_convert/sources/checkpoint_selection.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/strict_json.h"
#include "recis_convert/sources/global_step.h"

namespace recis_convert {
namespace {

constexpr uint64_t kMaxEvalLogBytes = 64u << 20;  // one line per evaluation: megabytes even for long trainings

std::string where(const std::string& path, size_t line) { return path + ":" + std::to_string(line); }

std::string format_value(double v) {
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}

}  // namespace

Result<std::vector<EvalRecord>> parse_eval_log(const std::string& text, const std::string& metric,
                                               const std::string& path) {
  std::map<int64_t, EvalRecord> by_step;  // a step evaluated twice keeps its last line
  std::set<std::string> other_metrics;
  bool any_record = false;
  size_t line_number = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    any_record = true;
    auto parsed = parse_strict_json(line, where(path, line_number), "evaluation record");
    if (!parsed) return parsed.error();
    const nlohmann::json& record = parsed.value().value;
    if (!record.is_object()) return bad_input(where(path, line_number), "is not a JSON object");
    auto step = record.find("global_step");
    if (step == record.end() || !step->is_number_integer()) {
      return bad_input(where(path, line_number), "has no integer \"global_step\"");
    }
    auto value = record.find(metric);
    if (value == record.end()) {
      for (const auto& item : record.items()) {
        if (item.key() != "global_step") other_metrics.insert(item.key());
      }
      continue;
    }
    if (!value->is_number() || !std::isfinite(value->get<double>())) {
      return bad_input(where(path, line_number), "metric \"" + metric + "\" is not a finite number");
    }
    const int64_t global_step = step->get<int64_t>();
    by_step[global_step] = EvalRecord{global_step, value->get<double>(), line_number};
  }
  if (by_step.empty()) {
    if (!any_record) {
      return bad_input(path, "is empty: no evaluation to choose the best checkpoint from");
    }
    std::string known;
    for (const auto& m : other_metrics) known += (known.empty() ? "" : ", ") + m;
    return bad_input(path, "has no metric \"" + metric + "\"" + (known.empty() ? "" : " (it has: " + known + ")"));
  }
  std::vector<EvalRecord> records;
  for (const auto& [step, record] : by_step) records.push_back(record);
  return records;
}

Result<CheckpointChoice> choose_best_checkpoint(const std::vector<EvalRecord>& records, const std::string& metric,
                                                MetricOrder order, const std::string& log_path,
                                                const std::function<bool(const std::string&)>& exists,
                                                const std::string& prefix) {
  const bool larger = order == MetricOrder::kLargerIsBetter;
  // Best first; among equal values the later step first.
  std::vector<EvalRecord> ranked = records;
  std::sort(ranked.begin(), ranked.end(), [larger](const EvalRecord& a, const EvalRecord& b) {
    if (a.value != b.value) return larger ? a.value > b.value : a.value < b.value;
    return a.global_step > b.global_step;
  });
  std::vector<std::string> skipped;
  for (const auto& record : ranked) {
    const std::string id = prefix + std::to_string(record.global_step);
    if (!exists(id)) {
      skipped.push_back(id);
      continue;
    }
    CheckpointChoice choice{id, record.global_step, record.value, ""};
    choice.reason = "best " + metric + " = " + format_value(record.value) + " (" +
                    (larger ? "larger" : "smaller") + " is better) of " + std::to_string(records.size()) +
                    " evaluated steps in " + log_path;
    if (!skipped.empty()) {
      choice.reason += "; skipped " + std::to_string(skipped.size()) + " better step(s) no longer on disk (" +
                       skipped.front() + (skipped.size() > 1 ? ", ..." : "") + ")";
    }
    return choice;
  }
  return bad_input(log_path, "none of its " + std::to_string(records.size()) + " evaluated steps has a checkpoint on "
                             "disk (looked for " + skipped.front() + (skipped.size() > 1 ? " and others" : "") + ")");
}

Result<CheckpointChoice> select_best_checkpoint(const std::string& output_dir, const std::string& log_path,
                                                const std::string& metric, MetricOrder order,
                                                const std::string& prefix) {
  struct stat st {};
  if (::stat((output_dir + "/" + kIndexFile).c_str(), &st) == 0 ||
      (prefix != kRecisCheckpointPrefix && step_in_name(split_path(output_dir).base, prefix))) {
    return bad_input(output_dir, "is a checkpoint; --select best chooses among the " + prefix +
                                     "<step> directories of a training output directory, so give that instead");
  }
  if (!is_directory(output_dir)) return bad_input(output_dir, "not a directory");
  auto text = read_small_file(log_path, kMaxEvalLogBytes);
  if (!text) return text.error();
  auto records = parse_eval_log(text.value(), metric, log_path);
  if (!records) return records.error();
  return choose_best_checkpoint(records.value(), metric, order, log_path,
                                [&](const std::string& id) { return is_directory(output_dir + "/" + id); }, prefix);
}

}  // namespace recis_convert
