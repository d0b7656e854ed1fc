// libFuzzer target: the checkpoint metadata readers (index, tensorkey.json, the `checkpoint` list file) and the
// evaluation log of --select best.
#include <cstddef>
#include <cstdint>
#include <string>

#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/sources/checkpoint_selection.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recis_convert;
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)parse_index_json(text, "index");
  auto tensorkey = parse_tensorkey_json(text, "tensorkey.json");
  if (tensorkey) {
    for (const auto& [key, logical] : tensorkey.value()) (void)classify_key(key, logical);
  }
  (void)latest_checkpoint_id(text, "checkpoint");
  (void)parse_sparse_key(text);
  auto records = parse_eval_log(text, "auc", "train_eval_result_v2.txt");
  if (records) {
    (void)choose_best_checkpoint(records.value(), "auc", MetricOrder::kLargerIsBetter, "log",
                                 [](const std::string& id) { return id.size() % 2 == 0; });
  }
  return 0;
}
