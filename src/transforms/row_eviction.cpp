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

// Moves each run of kept rows with one memmove, and skips dropped rows eight at a time: a delta keeps few rows, an
// eviction most, and a call per row cost more than the copying in both.
uint64_t compact_rows(unsigned char* rows, uint64_t row_bytes, const unsigned char* keep, uint64_t n) {
  uint64_t kept = 0, i = 0;
  while (i < n) {
    if (i + 8 <= n) {
      uint64_t eight;
      std::memcpy(&eight, keep + i, sizeof eight);
      if (eight == 0) {
        i += 8;
        continue;
      }
    }
    if (!keep[i]) {
      ++i;
      continue;
    }
    uint64_t end = i + 1;
    while (end < n && keep[end]) ++end;
    if (kept != i) std::memmove(rows + kept * row_bytes, rows + i * row_bytes, (end - i) * row_bytes);
    kept += end - i;
    i = end;
  }
  return kept;
}

float l2_norm(const float* row, size_t dim) {
  float sum = 0;
  for (size_t i = 0; i < dim; ++i) sum += row[i] * row[i];
  return std::sqrt(sum);
}

}  // namespace recis_convert
