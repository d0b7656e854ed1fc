// The rules that evict stale rows at export time (--evict-older-than, --evict-l2-below), as RecIS's
// GlobalStepFilterHook and DeepRec's save-time eviction do during training. Pure decisions on one row; the sinks
// apply a part's decisions to every slot of that part together (an evicted row leaves id, embedding, step_filter
// and the kept optimizer slots at once).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace recis_convert {

struct EvictionRules {
  std::optional<uint64_t> older_than;  // --evict-older-than STEPS
  std::optional<float> l2_below;       // --evict-l2-below T

  bool any() const { return older_than.has_value() || l2_below.has_value(); }
};

// --evict-older-than: a row last updated at `last_update` stays iff global_step - last_update <= steps (a row
// exactly `steps` old stays; one updated after the global step, as a clock skew could make it, stays too).
bool kept_by_step(int64_t global_step, int64_t last_update, uint64_t steps);

// The L2 norm of an embedding row in float32: the squares summed in element order, then the square root.
float l2_norm(const float* row, size_t dim);

// --evict-l2-below: a row stays iff its norm is not below the threshold.
inline bool kept_by_norm(const float* row, size_t dim, float threshold) { return !(l2_norm(row, dim) < threshold); }

// The decisions for `n` rows of a part from its step_filter column (int64 [n, 1], little-endian, as in the file):
// keep[i] is 1 or 0. Returns how many stay.
uint64_t decide_by_step(const unsigned char* step_filter, uint64_t n, int64_t global_step, uint64_t steps,
                        unsigned char* keep);

// Moves the kept rows of `n` rows of `row_bytes` each to the front of `rows`, in order (in place: any slot of the
// part, whatever its layout). Returns how many stay.
uint64_t compact_rows(unsigned char* rows, uint64_t row_bytes, const unsigned char* keep, uint64_t n);

}  // namespace recis_convert
