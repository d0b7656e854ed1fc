// The job's row transforms, in the order they apply: the optimizer-slot filter (--filter-optimizer,
// --drop-slot), then the serving dtype of embedding rows (--quantize-embeddings, --quantize-table). Later
// transforms (row eviction, routing) join here, in one place, so every source and every sink gets the same chain.
#pragma once

#include <string>
#include <vector>

#include "recis_convert/transforms/quantization_error.h"
#include "recis_convert/transforms/row_transform.h"
#include "recis_convert/transforms/serving_dtype.h"

namespace recis_convert {

// `quantization` (may be null) receives each converted table and its measured error; it must outlive the chain.
RowTransformChain make_row_transforms(bool filter_optimizer, const std::vector<std::string>& drop_slots,
                                      const EmbeddingDTypes& embedding_dtypes,
                                      QuantizationLedger* quantization = nullptr);

}  // namespace recis_convert
