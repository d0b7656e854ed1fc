// Fills a dense architecture with the checkpoint's weights without a TorchScript runtime: the archive is a zip of
// pickles and storages, so each tensor the module holds gets the weight `<dense-name>.<attribute path>`'s bytes
// (model.pt's, or a Distributed Checkpoint's: dense_weights.h) in place of its storage, after the names, shapes and dtypes are checked; code, constants and every other record are
// copied unchanged. So an architecture scripted by any torch version is filled the same way, even one whose ops the
// plugin's libtorch does not know; freezing and scoring then happen in the plugin where its runtime can.
#pragma once

#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/dense/dense_weights.h"

namespace recis_convert {

struct WeightFill {
  size_t tensors = 0;                 // the module's tensors, every one filled
  std::vector<std::string> warnings;  // weights under the prefix that the module does not hold
};

// Writes `out_path`. A module tensor with no weight of its name, or another shape or dtype, is bad input naming
// `weights` and listing every such name; so is a tensor that does not own its storage (a view, or storage shared
// with another tensor), since a whole storage is what gets replaced.
Result<WeightFill> fill_dense_weights(const std::string& arch, const DenseWeights& weights,
                                      const std::string& dense_name, const std::string& out_path);

}  // namespace recis_convert
