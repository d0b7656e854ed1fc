// The stall watchdog's judgement (--stall-timeout, issue 36), as a pure function of what a rank has heard, so it is
// unit-tested without MPI or clocks; mpi_world.cpp carries the heartbeats and acts on the verdict.
//
// Across nodes, a network partition does not end an MPI job: a rank waiting in a collective for a peer behind the
// cut waits forever, and nothing says which node went silent. So every rank sends a small heartbeat at a fixed
// interval from a thread of its own, saying how far its work has moved and whether it is waiting in a collective:
// rank 0 to every rank, every other rank to rank 0. A run has stalled when
//   - rank 0 has heard nothing from a rank for the timeout (silent: a partition, a dead node),
//   - another rank has heard nothing from rank 0 for the timeout (the same, seen from the other side),
//   - rank 0 hears a rank that is working (not waiting in a collective) but whose work has not moved for the
//     timeout (stuck: a hung file system, say), or
//   - every rank waits in a collective and nothing has moved anywhere for the timeout (a collective that never
//     completes).
// A rank that said goodbye (its last heartbeat, sent as it shuts MPI down) is no longer judged.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace recis_convert {

// What a rank says of itself, each heartbeat interval.
struct Heartbeat {
  uint64_t activity = 0;  // moves whenever the rank's work does (activity.h)
  uint64_t waiting = 0;   // 1 while it waits in a blocking collective
  uint64_t goodbye = 0;   // 1 in its last heartbeat
};

struct Stall {
  std::vector<int> silent;  // ranks not heard from for the timeout
  std::vector<int> stuck;   // ranks heard from, whose work has not moved for the timeout
  bool everyone_waiting = false;  // `stuck` holds every rank, all waiting in collectives
};

class StallWatch {
 public:
  // Once one rank has been silent for the timeout, every rank silent for this share of it is named too: ranks cut
  // off together fall silent a heartbeat or two apart, and a healthy rank is never silent for more than a couple of
  // heartbeats (kBeatsPerTimeout in mpi_world.cpp sends six per timeout).
  static constexpr double kAlsoSilentShare = 0.5;

  // `now` and every later time are seconds on one monotonic clock.
  StallWatch(int rank, int size, double timeout_seconds, double now);

  // A heartbeat from `peer` arrived.
  void heard(int peer, const Heartbeat& beat, double now);
  // This rank's own state (rank 0 takes it into the everyone-waiting rule).
  void self(const Heartbeat& beat, double now) { heard(rank_, beat, now); }

  // The stall, if the run has one now.
  std::optional<Stall> judge(double now) const;

 private:
  struct Peer {
    Heartbeat last;
    double heard_at = 0;  // last heartbeat
    double moved_at = 0;  // last change of activity or waiting
  };
  bool watched(int peer) const { return peer != rank_ && (rank_ == 0 || peer == 0); }

  int rank_;
  double timeout_;
  std::vector<Peer> peers_;
};

// One line for the log: "stalled: no word for 30 s from ranks 4, 5 (recis-node3); ..." with each rank's host
// (hosts[r], from MPI_Get_processor_name).
std::string describe_stall(const Stall& stall, double timeout_seconds, const std::vector<std::string>& hosts);

}  // namespace recis_convert
