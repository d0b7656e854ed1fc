#include "recis_convert/transforms/row_eviction.h"

#include <cmath>

namespace recis_convert {

bool kept_by_step(int64_t global_step, int64_t last_update, uint64_t steps) {
  if (last_update >= global_step) return true;
  // global_step > last_update: the difference is positive and fits in 64 unsigned bits whatever the values
  const uint64_t age = static_cast<uint64_t>(global_step) - static_cast<uint64_t>(last_update);
  return age <= steps;
}

float l2_norm(const float* row, size_t dim) {
  float sum = 0;
  for (size_t i = 0; i < dim; ++i) sum += row[i] * row[i];
  return std::sqrt(sum);
}

}  // namespace recis_convert
