#include "recis_convert/common/progress.h"

#include <cmath>
#include <cstdio>
#include <utility>

#include "recis_convert/common/log.h"

namespace recis_convert {
namespace {

std::string eta_text(double seconds) {
  char text[32];
  const long s = std::lround(seconds);
  if (s < 120) {
    std::snprintf(text, sizeof text, "%ld s", s);
  } else if (s < 7200) {
    std::snprintf(text, sizeof text, "%ld min %02ld s", s / 60, s % 60);
  } else {
    std::snprintf(text, sizeof text, "%ld h %02ld min", s / 3600, (s / 60) % 60);
  }
  return text;
}

}  // namespace

ProgressMeter::ProgressMeter(uint64_t total_bytes, uint64_t total_items, double interval_seconds,
                             Clock::time_point start, std::string items)
    : total_bytes_(total_bytes),
      total_items_(total_items),
      items_(std::move(items)),
      interval_(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval_seconds))),
      start_(start),
      last_(start),
      enabled_(interval_seconds > 0) {}

bool ProgressMeter::due(Clock::time_point now) const { return enabled_ && now - last_ >= interval_; }

std::string ProgressMeter::line(uint64_t bytes_done, uint64_t items_done, Clock::time_point now) {
  last_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(bytes_done) / elapsed : 0;
  const double percent = total_bytes_ ? 100.0 * static_cast<double>(bytes_done) / static_cast<double>(total_bytes_) : 100;
  std::string eta = "ETA unknown";
  if (rate > 0 && bytes_done <= total_bytes_) {
    eta = "ETA " + eta_text(static_cast<double>(total_bytes_ - bytes_done) / rate);
  }
  char text[64];
  std::snprintf(text, sizeof text, " (%.0f%%), ", std::floor(percent));
  return "progress: " + format_bytes(static_cast<double>(bytes_done)) + " of " +
         format_bytes(static_cast<double>(total_bytes_)) + text + format_bytes(rate) + "/s, " + eta + ", " + items_ + " " +
         std::to_string(items_done) + " of " + std::to_string(total_items_);
}

}  // namespace recis_convert
