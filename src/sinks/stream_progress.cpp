#include "recis_convert/sinks/stream_progress.h"

#include <unistd.h>

namespace recis_convert {

StreamProgress::StreamProgress(Comm& comm, const Log& log, double interval_seconds, uint64_t total_bytes,
                               uint64_t total_items, const std::string& items)
    : comm_(comm),
      log_(log),
      enabled_(interval_seconds > 0),
      meter_(total_bytes, total_items, interval_seconds, Clock::now(), items),
      last_post_(Clock::now()) {}

void StreamProgress::add_bytes(uint64_t n) {
  mine_.bytes += n;
  tick();
}

void StreamProgress::item_done(uint64_t item_bytes) {
  mine_.bytes = item_start_ + item_bytes;
  item_start_ = mine_.bytes;
  ++mine_.files;
  tick();
}

void StreamProgress::finish() {
  if (!enabled_) return;
  mine_.final = 1;
  if (!comm_.is_root()) {
    comm_.post_progress(mine_);
    return;
  }
  latest_.resize(static_cast<size_t>(comm_.size()));
  latest_[0] = mine_;
  for (;;) {
    comm_.receive_progress(latest_);
    bool all_final = true;
    for (const auto& count : latest_) all_final = all_final && count.final;
    if (all_final) return;
    print_if_due();
    ::usleep(20 * 1000);
  }
}

void StreamProgress::tick() {
  if (!enabled_) return;
  if (comm_.is_root()) {
    latest_.resize(static_cast<size_t>(comm_.size()));
    comm_.receive_progress(latest_);
    latest_[0] = mine_;
    print_if_due();
  } else if (Clock::now() - last_post_ >= std::chrono::seconds(1)) {
    comm_.post_progress(mine_);
    last_post_ = Clock::now();
  }
}

void StreamProgress::print_if_due() {
  const auto now = Clock::now();
  if (!meter_.due(now)) return;
  uint64_t bytes = 0, items = 0;
  for (const auto& count : latest_) {
    bytes += count.bytes;
    items += count.files;
  }
  log_.stage(meter_.line(bytes, items, now));
}

}  // namespace recis_convert
