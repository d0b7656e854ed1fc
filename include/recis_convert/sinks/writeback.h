// Durability of exported files without making the copy wait for the disk: each finished file is handed to a
// background thread that fsyncs and closes the files in the order they were finished, while the rank copies the
// next ones. At most `max_pending` files wait (add() blocks beyond that, so open descriptors stay bounded).
// fsyncing on the copying thread, even deferred, stalled it for the disk's whole write time (on a 2 GiB copy,
// sync_file_range + fsync held the copying thread ~0.9 s of ~2.4 s).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "recis_convert/common/error.h"

namespace recis_convert {

class WritebackQueue {
 public:
  explicit WritebackQueue(size_t max_pending);
  ~WritebackQueue();  // stops the thread; closes whatever is still queued without fsync (the export is abandoned)
  WritebackQueue(const WritebackQueue&) = delete;
  WritebackQueue& operator=(const WritebackQueue&) = delete;

  // Takes ownership of `fd` (a fully written file). Returns the first fsync failure seen so far (kOutput,
  // naming the file that failed), so a rank stops copying soon after the disk fails. `then`, if given, runs on the
  // queue's thread once the file is fsynced and closed (--resume journals the file there: durable before it
  // counts as done); its failure counts as the file's.
  Status add(int fd, const std::string& path, std::function<Status()> then = nullptr);

  // Waits until every queued file is fsynced and closed; the first failure, if any.
  Status flush_all();

 private:
  struct Pending {
    int fd;
    std::string path;
    std::function<Status()> then;
  };
  void run();

  const size_t max_pending_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Pending> queue_;  // files not yet taken by the thread
  bool busy_ = false;          // the thread is fsyncing one file
  bool stopping_ = false;
  std::optional<Error> failure_;
  std::thread worker_;  // last: started once the members above exist
};

// For files that several ranks write into (a resharded export): no rank can fsync one before all have written, so
// the fsync comes after the barrier. Starting the disk writes of each range as it is written (sync_file_range
// SYNC_FILE_RANGE_WRITE, on a background thread: it can block while the device queue is full) leaves that fsync
// little to wait for. Best effort: a failure here is not reported (the final fsync reports it).
class WritebackStarter {
 public:
  WritebackStarter();
  ~WritebackStarter();  // waits for the thread
  WritebackStarter(const WritebackStarter&) = delete;
  WritebackStarter& operator=(const WritebackStarter&) = delete;

  void start(const std::string& path, uint64_t offset, uint64_t length);

 private:
  struct Range {
    std::string path;
    uint64_t offset, length;
  };
  void run();

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Range> queue_;
  bool stopping_ = false;
  std::thread worker_;  // last
};

}  // namespace recis_convert
