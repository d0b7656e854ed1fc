// Logging policy: rank 0 prints one line per stage to stdout (silenced by --quiet); warnings and errors go to
// stderr and are never silenced; --verbose adds per-file lines from every rank.
#pragma once

#include <chrono>
#include <string>

namespace recis_convert {

class Log {
 public:
  Log(int rank, bool quiet, bool verbose) : rank_(rank), quiet_(quiet), verbose_(verbose) {}

  void stage(const std::string& line) const;   // rank 0 only
  void detail(const std::string& line) const;  // every rank, --verbose only
  void event(const std::string& line) const;   // every rank, unless quiet: what one rank found (e.g. a redo)
  void warn(const std::string& line) const;    // rank 0 only, always
  static void error(const std::string& line);  // the caller decides which rank prints

 private:
  int rank_;
  bool quiet_;
  bool verbose_;
};

std::string format_bytes(double bytes);      // "1.50 GiB"
std::string format_seconds(double seconds);  // "12.34 s"
double seconds_since(std::chrono::steady_clock::time_point start);  // for stage timings

}  // namespace recis_convert
