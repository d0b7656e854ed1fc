#include "recis_convert/transforms/row_eviction.h"

#include <cmath>
#include <cstring>

namespace recis_convert {

bool kept_by_step(int64_t global_step, int64_t last_update, uint64_t steps) {
  if (last_update >= global_step) return true;
  // global_step > last_update: the difference is positive and fits in 64 unsigned bits whatever the values
  const uint64_t age = static_cast<uint64_t>(global_step) - static_cast<uint64_t>(last_update);
  return age <= steps;
}

uint64_t decide_by_step(const unsigned char* step_filter, uint64_t n, int64_t global_step, uint64_t steps,
                        unsigned char* keep) {
  uint64_t kept = 0;
  for (uint64_t i = 0; i < n; ++i) {
    int64_t last_update;
    std::memcpy(&last_update, step_filter + i * sizeof last_update, sizeof last_update);  // little-endian host
    keep[i] = kept_by_step(global_step, last_update, steps) ? 1 : 0;
    kept += keep[i];
  }
  return kept;
}

uint64_t compact_rows(unsigned char* rows, uint64_t row_bytes, const unsigned char* keep, uint64_t n) {
  uint64_t kept = 0;
  for (uint64_t i = 0; i < n; ++i) {
    if (!keep[i]) continue;
    if (kept != i) std::memmove(rows + kept * row_bytes, rows + i * row_bytes, row_bytes);
    ++kept;
  }
  return kept;
}

float l2_norm(const float* row, size_t dim) {
  float sum = 0;
  for (size_t i = 0; i < dim; ++i) sum += row[i] * row[i];
  return std::sqrt(sum);
}

}  // namespace recis_convert
