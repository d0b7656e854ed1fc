#include "recis_convert/plan/rank_assignment.h"

#include <algorithm>
#include <numeric>

namespace recis_convert {

std::vector<int> assign_files(const std::vector<uint64_t>& file_sizes, int world_size, Balance balance) {
  std::vector<int> owners(file_sizes.size(), 0);
  if (world_size <= 1) return owners;
  if (balance == Balance::kRoundRobin) {
    for (size_t i = 0; i < owners.size(); ++i) owners[i] = static_cast<int>(i % static_cast<size_t>(world_size));
    return owners;
  }
  // Longest-processing-time-first: within 4/3 of the best makespan, and stable for equal sizes.
  std::vector<size_t> order(file_sizes.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return file_sizes[a] > file_sizes[b]; });
  std::vector<uint64_t> load(static_cast<size_t>(world_size), 0);
  for (size_t file : order) {
    size_t rank = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    owners[file] = static_cast<int>(rank);
    load[rank] += file_sizes[file];
  }
  return owners;
}

std::vector<size_t> files_of_rank(const std::vector<int>& owners, int rank) {
  std::vector<size_t> mine;
  for (size_t i = 0; i < owners.size(); ++i) {
    if (owners[i] == rank) mine.push_back(i);
  }
  return mine;
}

const char* balance_name(Balance balance) { return balance == Balance::kSize ? "size" : "round-robin"; }

}  // namespace recis_convert
