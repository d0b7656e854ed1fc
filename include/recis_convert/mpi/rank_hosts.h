// Ranks named with their hosts, for the lines that tell an operator which node to look at.
#pragma once

#include <string>
#include <vector>

namespace recis_convert {

// "ranks 4, 5 (node3); rank 2 (node2)": `ranks` grouped by host (hosts[r]), hosts in order of their first rank.
std::string ranks_on_hosts(const std::vector<int>& ranks, const std::vector<std::string>& hosts);

}  // namespace recis_convert
