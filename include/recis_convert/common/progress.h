// Progress lines for long runs, printed by rank 0 at most once per --progress-interval:
//   progress: 12.40 GiB of 40.00 GiB (31%), 1.52 GiB/s, ETA 18 s, files 120 of 400
// This file only decides when a line is due and what it says; the counts of the other ranks reach rank 0
// through the communicator (sinks/stream_progress.h), so this stays testable without MPI.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace recis_convert {

class ProgressMeter {
 public:
  using Clock = std::chrono::steady_clock;

  // interval_seconds <= 0 disables the meter (due() is never true). `items` names what total_items counts
  // ("files"; "datasets" for HDF5).
  ProgressMeter(uint64_t total_bytes, uint64_t total_items, double interval_seconds, Clock::time_point start,
                std::string items = "files");

  // Whether a line is due at `now` (the first one after one full interval: short runs print none).
  bool due(Clock::time_point now) const;

  // The line for these totals over all ranks; marks it printed at `now`.
  std::string line(uint64_t bytes_done, uint64_t items_done, Clock::time_point now);

 private:
  uint64_t total_bytes_;
  uint64_t total_items_;
  std::string items_;
  Clock::duration interval_;
  Clock::time_point start_;
  Clock::time_point last_;
  bool enabled_;
};

}  // namespace recis_convert
