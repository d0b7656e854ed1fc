// A counter that moves whenever this process's work does: a read or write of a data file returned, a collective
// completed, a progress count was posted. The stall watchdog (mpi/stall_watch.h) sends it in each heartbeat, so rank
// 0 can tell a rank that is stuck (heard from, but its work not moving) from one that is slow. One relaxed atomic
// add per call: nothing next to the I/O it counts.
#pragma once

#include <atomic>
#include <cstdint>

namespace recis_convert {

namespace detail {
inline std::atomic<uint64_t> g_activity{0};
}

inline void note_activity() { detail::g_activity.fetch_add(1, std::memory_order_relaxed); }
inline uint64_t activity() { return detail::g_activity.load(std::memory_order_relaxed); }

}  // namespace recis_convert
