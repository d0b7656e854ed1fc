#include "recis_convert/sinks/writeback.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace recis_convert {
namespace {

// Ok, or the failure of fsync/close naming the file. Always closes fd.
Status fsync_and_close(int fd, const std::string& path) {
  int rc = ::fsync(fd);
  int err = errno;
  if (::close(fd) != 0 && rc == 0) {
    rc = -1;
    err = errno;
  }
  if (rc != 0) return output_error(path, std::string("fsync failed: ") + std::strerror(err));
  return Ok{};
}

}  // namespace

WritebackQueue::WritebackQueue(size_t max_pending) : max_pending_(max_pending == 0 ? 1 : max_pending) {
  // SIGTERM/SIGINT stay with the main thread, which polls for them between buffers.
  sigset_t block, previous;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  pthread_sigmask(SIG_BLOCK, &block, &previous);
  worker_ = std::thread([this] { run(); });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

WritebackQueue::~WritebackQueue() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  worker_.join();
  for (const auto& p : queue_) ::close(p.fd);
}

void WritebackQueue::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Pending next = queue_.front();
    queue_.pop_front();
    busy_ = true;
    const bool already_failed = failure_.has_value();
    lock.unlock();
    Status done = Ok{};
    if (already_failed) {
      ::close(next.fd);  // the export is lost anyway: just release the descriptor
    } else {
      done = fsync_and_close(next.fd, next.path);
      if (done && next.then) done = next.then();
    }
    lock.lock();
    busy_ = false;
    if (!done && !failure_) failure_ = done.error();
    changed_.notify_all();
  }
}

Status WritebackQueue::add(int fd, const std::string& path, std::function<Status()> then) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return queue_.size() < max_pending_ || failure_; });
  if (failure_) {
    ::close(fd);
    return *failure_;
  }
  queue_.push_back({fd, path, std::move(then)});
  changed_.notify_all();
  return Ok{};
}

Status WritebackQueue::flush_all() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return queue_.empty() && !busy_; });
  if (failure_) return *failure_;
  return Ok{};
}

WritebackStarter::WritebackStarter() : worker_([this] { run(); }) {}

WritebackStarter::~WritebackStarter() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  worker_.join();
}

void WritebackStarter::start(const std::string& path, uint64_t offset, uint64_t length) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    constexpr size_t kMaxQueued = 1024;  // beyond that the disk is behind anyway: a range is skipped, not waited on
    if (queue_.size() >= kMaxQueued) return;
    queue_.push_back(Range{path, offset, length});
  }
  changed_.notify_one();
}

void WritebackStarter::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;  // the final fsync writes whatever was not started
    Range range = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    const int fd = ::open(range.path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      ::sync_file_range(fd, static_cast<off64_t>(range.offset), static_cast<off64_t>(range.length),
                        SYNC_FILE_RANGE_WRITE);
      ::close(fd);
    }
    lock.lock();
  }
}

}  // namespace recis_convert
