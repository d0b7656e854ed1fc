#include "recis_convert/mpi/stall_watch.h"

#include <algorithm>
#include <map>

#include "recis_convert/common/log.h"

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
  for (int r = 0; r < static_cast<int>(peers_.size()); ++r) {
    const Peer& p = peers_[static_cast<size_t>(r)];
    if (!watched(r) || p.last.goodbye) continue;
    if (now - p.heard_at >= timeout_) {
      stall.silent.push_back(r);
    } else if (rank_ == 0 && !p.last.waiting && now - p.moved_at >= timeout_) {
      stall.stuck.push_back(r);
    }
  }
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

namespace {

// "ranks 4, 5 (recis-node3); rank 2 (recis-node2)": ranks grouped by host, hosts in order of their first rank.
std::string ranks_and_hosts(const std::vector<int>& ranks, const std::vector<std::string>& hosts) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<int>> by_host;
  for (int r : ranks) {
    const std::string host = static_cast<size_t>(r) < hosts.size() ? hosts[static_cast<size_t>(r)] : "?";
    if (by_host.find(host) == by_host.end()) order.push_back(host);
    by_host[host].push_back(r);
  }
  std::string text;
  for (const std::string& host : order) {
    const std::vector<int>& rs = by_host[host];
    if (!text.empty()) text += "; ";
    text += rs.size() == 1 ? "rank " : "ranks ";
    for (size_t i = 0; i < rs.size(); ++i) text += (i ? ", " : "") + std::to_string(rs[i]);
    text += " (" + host + ")";
  }
  return text;
}

}  // namespace

std::string describe_stall(const Stall& stall, double timeout_seconds, const std::vector<std::string>& hosts) {
  const std::string span = format_seconds(timeout_seconds);
  std::string text = "stalled:";
  if (!stall.silent.empty()) text += " no word for " + span + " from " + ranks_and_hosts(stall.silent, hosts);
  if (stall.everyone_waiting) {
    text += " every rank has waited in a collective for " + span + " and none completed";
  } else if (!stall.stuck.empty()) {
    text += std::string(stall.silent.empty() ? "" : ";") + " no progress for " + span + " from " +
            ranks_and_hosts(stall.stuck, hosts);
  }
  return text;
}

}  // namespace recis_convert
