// The rows of a delta export (--delta-since): those updated after the base export's step, by the step of each
// row's last update that RecIS's filter hook keeps in the `step_filter` slot. A row updated at exactly the base
// step was in the base already, so only a later step counts. Pure decisions; the sinks apply them to every slot
// of a part together, as they do eviction's (row_eviction.h).
#pragma once

#include <cstdint>

namespace recis_convert {

inline bool changed_after(int64_t base_step, int64_t last_update) { return last_update > base_step; }

// Clears keep[i] for the rows of a step_filter column (int64 [n, 1], little-endian, as in the file) that did not
// change after `base_step`; leaves the others as they are (so it combines with eviction's decisions). Returns how
// many keep[i] are 1 afterwards.
uint64_t decide_by_change(const unsigned char* step_filter, uint64_t n, int64_t base_step, unsigned char* keep);

}  // namespace recis_convert
