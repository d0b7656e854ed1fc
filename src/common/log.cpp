#include "recis_convert/common/log.h"

#include <cstdio>

namespace recis_convert {

void Log::stage(const std::string& line) const {
  if (rank_ != 0 || quiet_) return;
  std::fprintf(stdout, "recis-convert: %s\n", line.c_str());
  std::fflush(stdout);
}

void Log::detail(const std::string& line) const {
  if (!verbose_) return;
  std::fprintf(stdout, "recis-convert: [rank %d] %s\n", rank_, line.c_str());
  std::fflush(stdout);
}

void Log::event(const std::string& line) const {
  if (quiet_) return;
  std::fprintf(stdout, "recis-convert: %s\n", line.c_str());
  std::fflush(stdout);
}

void Log::warn(const std::string& line) const {
  if (rank_ != 0) return;
  std::fprintf(stderr, "recis-convert: warning: %s\n", line.c_str());
  std::fflush(stderr);
}

void Log::error(const std::string& line) {
  std::fprintf(stderr, "recis-convert: error: %s\n", line.c_str());
  std::fflush(stderr);
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int unit = 0;
  while (bytes >= 1024.0 && unit < 5) {
    bytes /= 1024.0;
    ++unit;
  }
  char text[64];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.2f %s", bytes, units[unit]);
  return text;
}

}  // namespace recis_convert

namespace recis_convert {

std::string format_seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f s", seconds);
  return text;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace recis_convert
