#include "recis_convert/transforms/row_delta.h"

#include <cstring>

namespace recis_convert {

uint64_t decide_by_change(const unsigned char* step_filter, uint64_t n, int64_t base_step, unsigned char* keep) {
  uint64_t kept = 0;
  for (uint64_t i = 0; i < n; ++i) {
    int64_t last_update;
    std::memcpy(&last_update, step_filter + i * sizeof last_update, sizeof last_update);  // little-endian host
    keep[i] &= changed_after(base_step, last_update) ? 1 : 0;
    kept += keep[i];
  }
  return kept;
}

}  // namespace recis_convert
