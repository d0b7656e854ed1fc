#include "recis_convert/common/interrupt.h"

#include <signal.h>

#include <atomic>
#include <string>

namespace recis_convert {
namespace {

std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "the signal flag must be usable from a signal handler");

void on_signal(int signal) { g_signal.store(signal, std::memory_order_relaxed); }

}  // namespace

void install_interrupt_handlers() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: a blocking read or write returns EINTR and the loop sees the flag
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGUSR1, &action, nullptr);
}

int interrupt_signal() { return g_signal.load(std::memory_order_relaxed); }

std::optional<Error> interruption() {
  const int signal = interrupt_signal();
  if (signal == 0) return std::nullopt;
  const char* name = signal == SIGINT ? "SIGINT" : signal == SIGUSR1 ? "SIGUSR1" : "SIGTERM";
  return Error{ExitCode::kInterrupted, "", std::string("interrupted by ") + name};
}

}  // namespace recis_convert
