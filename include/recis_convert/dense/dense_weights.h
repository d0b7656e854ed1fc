// The checkpoint's dense weights by name, whatever holds them: a RecIS checkpoint's model.pt, or every tensor of a
// Distributed Checkpoint that is not a table (sources/dcp_checkpoint.h). Listed when opened; a weight's elements are
// read when asked. --dense-model is filled from them (weight_fill.h) and model.h5's /dense group holds them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/formats/safetensors.h"
#include "recis_convert/sources/source.h"

namespace recis_convert {

struct DenseWeight {
  std::string name;  // as the checkpoint names it (model.pt's key, the DCP's fqn)
  DType dtype = DType::kF32;
  std::vector<uint64_t> shape;
};

class DenseWeights {
 public:
  virtual ~DenseWeights() = default;
  virtual const std::string& path() const = 0;  // what errors name: model.pt, the DCP's .metadata
  virtual std::string what() const = 0;         // what messages call it: "model.pt", "the checkpoint"
  virtual const std::vector<DenseWeight>& weights() const = 0;
  // Weight i's elements, contiguous, row-major, little-endian.
  virtual Result<std::string> bytes(size_t i) const = 0;
};

// RecIS: the state dict at `path` (model.pt).
Result<std::unique_ptr<DenseWeights>> open_model_pt(const std::string& path);

// The source's dense weights: a RecIS checkpoint's model.pt (nullptr when it has none), a DCP's dense tensors.
Result<std::unique_ptr<DenseWeights>> open_dense_weights(const SourceDescription& source);

}  // namespace recis_convert
