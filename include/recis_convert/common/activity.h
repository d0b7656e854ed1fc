// What the stall watchdog (mpi/stall_watch.h) says of this process in each heartbeat, kept where every stage can
// reach it without MPI:
//   - activity: a counter that moves whenever this process's work does (a read or write of a data file returned, a
//     collective completed, a progress count was posted), so that rank 0 can tell a rank that is stuck (heard
//     from, but its work not moving) from one that is slow;
//   - waiting: whether the main thread is inside a call that waits for the other ranks (the communicator's
//     collectives, HDF5's collective calls), where no activity is expected until the slowest rank arrives.
// One relaxed atomic operation each: nothing next to the I/O or the message they mark.
#pragma once

#include <atomic>
#include <cstdint>

namespace recis_convert {

namespace detail {
inline std::atomic<uint64_t> g_activity{0};
inline std::atomic<int> g_waiting{0};
}  // namespace detail

inline void note_activity() { detail::g_activity.fetch_add(1, std::memory_order_relaxed); }
inline uint64_t activity() { return detail::g_activity.load(std::memory_order_relaxed); }
inline bool waiting_for_peers() { return detail::g_waiting.load(std::memory_order_relaxed) > 0; }

// Marks a call that waits for the other ranks; its return is activity. `waits` false marks nothing (a transfer
// that may or may not be collective).
class WaitingForPeers {
 public:
  explicit WaitingForPeers(bool waits = true) : waits_(waits) {
    if (waits_) detail::g_waiting.fetch_add(1, std::memory_order_relaxed);
  }
  ~WaitingForPeers() {
    if (waits_) detail::g_waiting.fetch_sub(1, std::memory_order_relaxed);
    note_activity();
  }
  WaitingForPeers(const WaitingForPeers&) = delete;
  WaitingForPeers& operator=(const WaitingForPeers&) = delete;

 private:
  bool waits_;
};

}  // namespace recis_convert
