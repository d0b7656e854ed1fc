#include "recis_convert/transforms/job_transforms.h"

#include <memory>
#include <set>

#include "recis_convert/transforms/quantize.h"
#include "recis_convert/transforms/slot_filter.h"

namespace recis_convert {

RowTransformChain make_row_transforms(bool filter_optimizer, const std::vector<std::string>& drop_slots,
                                      bool quantize_int8) {
  RowTransformChain chain;
  chain.add(std::make_unique<OptimizerSlotFilter>(filter_optimizer,
                                                  std::set<std::string>(drop_slots.begin(), drop_slots.end())));
  if (quantize_int8) chain.add(std::make_unique<Int8RowwiseQuantizer>());
  return chain;
}

}  // namespace recis_convert
