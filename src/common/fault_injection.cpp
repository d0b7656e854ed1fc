#include "recis_convert/common/fault_injection.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <set>

#include "recis_convert/common/interrupt.h"

namespace recis_convert {
namespace {

struct ArmedFault {
  bool armed = false;
  std::string stage;
  int rank = 0;
  std::string action = "kill";
  bool fired = false;
  bool any_rank = false;
  int nth = 1;     // fire at this arrival at the stage
  int reached = 0;
};

ArmedFault g_fault;
int g_rank = 0;

const std::set<std::string> kStages = {"discover", "stream",  "file",    "piece", "range", "barrier", "hdf5",
                                       "metadata", "dense",   "publish", "merge"};

}  // namespace

Status arm_fault(const std::string& spec) {
  const size_t at = spec.find('@');
  if (at == std::string::npos) return usage_error("--debug-fail-at wants STAGE@RANK[:ACTION], not \"" + spec + "\"");
  ArmedFault fault;
  fault.armed = true;
  fault.stage = spec.substr(0, at);
  std::string rest = spec.substr(at + 1);
  const size_t colon = rest.find(':');
  if (colon != std::string::npos) {
    fault.action = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  const size_t star = fault.stage.find('*');
  if (star != std::string::npos) {
    try {
      fault.nth = std::stoi(fault.stage.substr(star + 1));
    } catch (...) {
      fault.nth = 0;
    }
    if (fault.nth < 1) return usage_error("--debug-fail-at: \"" + fault.stage + "\" wants STAGE*N with N >= 1");
    fault.stage = fault.stage.substr(0, star);
  }
  if (!kStages.count(fault.stage)) return usage_error("--debug-fail-at: unknown stage \"" + fault.stage + "\"");
  if (fault.action != "kill" && fault.action != "term" && fault.action != "stall" && fault.action != "pause") {
    return usage_error("--debug-fail-at: action must be kill, term, stall or pause");
  }
  try {
    fault.any_rank = rest == "*";
    fault.rank = fault.any_rank ? 0 : std::stoi(rest);
  } catch (...) {
    return usage_error("--debug-fail-at: \"" + rest + "\" is not a rank");
  }
  g_fault = fault;
  return Ok{};
}

void set_fault_rank(int rank) { g_rank = rank; }

void fault_point(const char* stage) {
  if (!g_fault.armed || g_fault.fired || (!g_fault.any_rank && g_fault.rank != g_rank) || g_fault.stage != stage) return;
  if (++g_fault.reached < g_fault.nth) return;
  g_fault.fired = true;
  std::fprintf(stderr, "recis-convert: [test] fault at %s on rank %d: %s\n", stage, g_rank, g_fault.action.c_str());
  std::fflush(stderr);
  if (g_fault.action == "kill") ::raise(SIGKILL);
  if (g_fault.action == "term") ::raise(SIGTERM);
  if (g_fault.action == "stall") {
    for (int i = 0; i < 1800 && !interrupt_signal(); ++i) ::usleep(100 * 1000);  // 3 min at most
  }
  if (g_fault.action == "pause") {  // 3 s for a test to change the world (e.g. truncate a source file), then go on
    for (int i = 0; i < 30 && !interrupt_signal(); ++i) ::usleep(100 * 1000);
  }
}

}  // namespace recis_convert
