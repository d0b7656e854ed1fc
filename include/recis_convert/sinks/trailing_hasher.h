// Hashes a byte range of a file on a helper thread, window by window, right behind a copy that the kernel makes
// (copy_file_range): each window is read just after the kernel copied it, while it is still in the CPU cache, so
// the checksum costs no second pass over memory (issue 19). The thread waits while it has caught up with the copy
// and is woken every kWakeWindows windows, so the copying thread pays a wake-up per two windows at most.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "recis_convert/common/checksum.h"
#include "recis_convert/common/error.h"

namespace recis_convert {

class TrailingHasher {
 public:
  // Hashes [offset, offset + length) of fd into `checksum`, reading windows of window_bytes into `window` (the
  // caller's memory, untouched by the caller until finish()). With `trail` false the thread does not wait for the
  // copy (where the kernel shares extents instead of copying, there is no cache to catch).
  TrailingHasher(int fd, const std::string& name, uint64_t offset, uint64_t length, char* window, size_t window_bytes,
                 PieceChecksum& checksum, bool trail);
  ~TrailingHasher();  // stops the thread after its current window and joins it (an abandoned copy)
  TrailingHasher(const TrailingHasher&) = delete;
  TrailingHasher& operator=(const TrailingHasher&) = delete;

  // The copy has reached offset + bytes.
  void copied(uint64_t bytes);
  // Waits for the last window: Ok, the read error (kBadInput naming the file) or an interruption.
  Status finish();

  static constexpr uint64_t kWakeWindows = 2;

 private:
  void run();

  const int fd_;
  const std::string& name_;
  const uint64_t offset_, length_;
  char* const window_;
  const size_t window_bytes_;
  PieceChecksum& checksum_;
  const bool trail_;

  std::atomic<uint64_t> copied_{0};
  std::atomic<uint64_t> wake_at_{0};   // the copied() the sleeping thread waits for
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable woken_;
  Status result_ = Ok{};  // the thread's, read after join
  std::thread worker_;    // last: started once the members above exist
};

}  // namespace recis_convert
