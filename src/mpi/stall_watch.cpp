#include "recis_convert/mpi/stall_watch.h"

#include <algorithm>

#include "recis_convert/common/log.h"
#include "recis_convert/mpi/rank_hosts.h"

namespace recis_convert {

StallWatch::StallWatch(int rank, int size, double timeout_seconds, double now)
    : rank_(rank), timeout_(timeout_seconds), peers_(static_cast<size_t>(size)) {
  for (Peer& p : peers_) p.heard_at = p.moved_at = now;  // everyone gets a full timeout from the start
}

void StallWatch::heard(int peer, const Heartbeat& beat, double now) {
  Peer& p = peers_.at(static_cast<size_t>(peer));
  if (beat.activity != p.last.activity || beat.waiting != p.last.waiting) p.moved_at = now;
  p.last = beat;
  p.heard_at = now;
}

std::optional<Stall> StallWatch::judge(double now) const {
  Stall stall;
  bool timed_out = false;
  for (int r = 0; r < static_cast<int>(peers_.size()); ++r) {
    const Peer& p = peers_[static_cast<size_t>(r)];
    if (!watched(r) || p.last.goodbye) continue;
    if (now - p.heard_at >= kAlsoSilentShare * timeout_) {
      stall.silent.push_back(r);
      timed_out = timed_out || now - p.heard_at >= timeout_;
    } else if (rank_ == 0 && !p.last.waiting && now - p.moved_at >= timeout_) {
      stall.stuck.push_back(r);
    }
  }
  if (!timed_out) stall.silent.clear();
  if (stall.silent.empty() && stall.stuck.empty() && rank_ == 0 && peers_.size() > 1) {
    bool all_waiting = true;
    double last_move = 0;
    for (const Peer& p : peers_) {
      all_waiting = all_waiting && p.last.waiting && !p.last.goodbye;
      last_move = std::max(last_move, p.moved_at);
    }
    if (all_waiting && now - last_move >= timeout_) {
      for (int r = 0; r < static_cast<int>(peers_.size()); ++r) stall.stuck.push_back(r);
      stall.everyone_waiting = true;
    }
  }
  if (stall.silent.empty() && stall.stuck.empty()) return std::nullopt;
  return stall;
}

std::string describe_stall(const Stall& stall, double timeout_seconds, const std::vector<std::string>& hosts) {
  const std::string span = format_seconds(timeout_seconds);
  std::string text = "stalled:";
  if (!stall.silent.empty()) text += " no word for " + span + " from " + ranks_on_hosts(stall.silent, hosts);
  if (stall.everyone_waiting) {
    text += " every rank has waited in a collective for " + span + " and none completed";
  } else if (!stall.stuck.empty()) {
    text += std::string(stall.silent.empty() ? "" : ";") + " no progress for " + span + " from " +
            ranks_on_hosts(stall.stuck, hosts);
  }
  return text;
}

}  // namespace recis_convert
