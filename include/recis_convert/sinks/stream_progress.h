// Progress of the stream stage over all ranks: rank 0 prints lines (common/progress.h); the other ranks post their
// counts to it at most once a second and a final count when done (Comm::post_progress). Disabled the same way on
// every rank (they all parse the same options), as --quiet or --progress-interval 0 ask.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "recis_convert/common/log.h"
#include "recis_convert/common/progress.h"
#include "recis_convert/mpi/comm.h"

namespace recis_convert {

class StreamProgress {
 public:
  // interval_seconds <= 0 disables it. `items` names what total_items counts ("files", "table shares").
  StreamProgress(Comm& comm, const Log& log, double interval_seconds, uint64_t total_bytes, uint64_t total_items,
                 const std::string& items = "files");

  void add_bytes(uint64_t n);
  // An item is done (copied, filtered or skipped): count it and all its bytes, copied or not.
  void item_done(uint64_t item_bytes);
  // The end of this rank's share. Rank 0 keeps printing until every other rank has posted its final count.
  void finish();

 private:
  using Clock = std::chrono::steady_clock;
  void tick();
  void print_if_due();

  Comm& comm_;
  const Log& log_;
  bool enabled_;
  ProgressMeter meter_;
  Clock::time_point last_post_;
  Comm::ProgressCount mine_;
  uint64_t item_start_ = 0;
  std::vector<Comm::ProgressCount> latest_;  // rank 0: every rank's last count
};

}  // namespace recis_convert
