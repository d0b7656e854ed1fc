// Which rank exports which data file. Pure functions of (file sizes, world size): unit-tested without MPI, and
// deterministic, so every rank computes the same plan from the same broadcast listing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace recis_convert {

enum class Balance {
  kRoundRobin,  // file i goes to rank i % size (the user's fixed shape, and RecIS's exporter)
  kSize,        // greedy by bytes: largest file first, each to the least-loaded rank (ties: lowest rank)
};

// The owner rank of each file, files given in listing order.
std::vector<int> assign_files(const std::vector<uint64_t>& file_sizes, int world_size, Balance balance);

// Indices (into the listing) of the files `rank` owns, in listing order.
std::vector<size_t> files_of_rank(const std::vector<int>& owners, int rank);

const char* balance_name(Balance balance);

}  // namespace recis_convert
