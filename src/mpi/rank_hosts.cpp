#include "recis_convert/mpi/rank_hosts.h"

#include <map>

namespace recis_convert {

std::string ranks_on_hosts(const std::vector<int>& ranks, const std::vector<std::string>& hosts) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<int>> by_host;
  for (int r : ranks) {
    const std::string host = r >= 0 && static_cast<size_t>(r) < hosts.size() ? hosts[static_cast<size_t>(r)] : "?";
    if (by_host.find(host) == by_host.end()) order.push_back(host);
    by_host[host].push_back(r);
  }
  std::string text;
  for (const std::string& host : order) {
    const std::vector<int>& on_host = by_host[host];
    if (!text.empty()) text += "; ";
    text += on_host.size() == 1 ? "rank " : "ranks ";
    for (size_t i = 0; i < on_host.size(); ++i) text += (i ? ", " : "") + std::to_string(on_host[i]);
    text += " (" + host + ")";
  }
  return text;
}

}  // namespace recis_convert
