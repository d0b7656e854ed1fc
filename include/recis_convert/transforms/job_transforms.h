// The job's row transforms, in the order they apply: the optimizer-slot filter (--filter-optimizer,
// --drop-slot), then int8 quantization of embedding rows (--quantize-embeddings int8). Later transforms (row
// eviction, routing) join here, in one place, so every source and every sink gets the same chain.
#pragma once

#include <string>
#include <vector>

#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

RowTransformChain make_row_transforms(bool filter_optimizer, const std::vector<std::string>& drop_slots,
                                      bool quantize_int8);

}  // namespace recis_convert
