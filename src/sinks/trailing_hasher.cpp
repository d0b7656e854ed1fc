#include "recis_convert/sinks/trailing_hasher.h"

#include <algorithm>

#include "recis_convert/common/file_io.h"
#include "recis_convert/common/interrupt.h"

namespace recis_convert {

TrailingHasher::TrailingHasher(int fd, const std::string& name, uint64_t offset, uint64_t length, char* window,
                               size_t window_bytes, PieceChecksum& checksum, bool trail)
    : fd_(fd), name_(name), offset_(offset), length_(length), window_(window), window_bytes_(window_bytes),
      checksum_(checksum), trail_(trail), worker_([this] { run(); }) {}

TrailingHasher::~TrailingHasher() {
  if (!worker_.joinable()) return;
  stop_.store(true);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    woken_.notify_one();
  }
  worker_.join();
}

void TrailingHasher::copied(uint64_t bytes) {
  // Sequentially consistent: either the thread sees this copied_ before it sleeps, or this sees sleeping_ and
  // notifies under the lock, after the thread's last check of copied_ (no lost wake-up). The lock is taken only
  // when the thread sleeps.
  copied_.store(bytes);
  if (sleeping_.load() && bytes >= wake_at_.load()) {
    std::lock_guard<std::mutex> lock(mutex_);
    woken_.notify_one();
  }
}

Status TrailingHasher::finish() {
  copied(length_);
  worker_.join();
  return result_;
}

void TrailingHasher::run() {
  uint64_t done = 0;
  while (done < length_) {
    const uint64_t want = std::min<uint64_t>(window_bytes_, length_ - done);
    if (trail_ && copied_.load() < done + want) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_at_.store(std::min(length_, done + kWakeWindows * window_bytes_));
      sleeping_.store(true);
      woken_.wait(lock, [&] {
        return stop_.load() || copied_.load() >= wake_at_.load();
      });
      sleeping_.store(false);
    }
    if (stop_.load()) return;
    if (auto stop = interruption()) {  // within one window of a signal, as the copy
      result_ = *stop;
      return;
    }
    // the same read, and the same error, as the copy engine's inline hash of a short range
    auto read = read_exact(fd_, offset_ + done, static_cast<size_t>(want), window_, name_, "the copied bytes");
    if (!read) {
      result_ = read.error();
      return;
    }
    checksum_.update(window_, static_cast<size_t>(want));
    done += want;
  }
}

}  // namespace recis_convert
