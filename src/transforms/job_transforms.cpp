#include "recis_convert/transforms/job_transforms.h"

#include <memory>
#include <set>

#include "recis_convert/transforms/quantize.h"
#include "recis_convert/transforms/slot_filter.h"

namespace recis_convert {

RowTransformChain make_row_transforms(bool filter_optimizer, const std::vector<std::string>& drop_slots,
                                      const EmbeddingDTypes& embedding_dtypes, QuantizationLedger* quantization) {
  RowTransformChain chain;
  chain.add(std::make_unique<OptimizerSlotFilter>(filter_optimizer,
                                                  std::set<std::string>(drop_slots.begin(), drop_slots.end())));
  if (embedding_dtypes.any()) {
    chain.add(std::make_unique<EmbeddingQuantizer>(embedding_dtypes, quantization));
    chain.set_quantization(quantization);
  }
  return chain;
}

}  // namespace recis_convert
