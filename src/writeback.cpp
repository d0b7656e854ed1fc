#include "recis_convert/writeback.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace recis_convert {

WritebackQueue::~WritebackQueue() {
  for (const auto& p : pending_) ::close(p.fd);
}

Status WritebackQueue::finish(const Pending& pending) {
  int rc = ::fsync(pending.fd);
  int err = errno;
  if (::close(pending.fd) != 0 && rc == 0) {
    rc = -1;
    err = errno;
  }
  if (rc != 0) return output_error(pending.path, std::string("fsync failed: ") + std::strerror(err));
  return Ok{};
}

Status WritebackQueue::add(int fd, const std::string& path) {
  // Start writing the file's dirty pages now; failure here is only a lost optimisation (fsync reports errors).
  ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  pending_.push_back({fd, path});
  while (pending_.size() > max_pending_) {
    Pending oldest = pending_.front();
    pending_.pop_front();
    auto done = finish(oldest);
    if (!done) return done;
  }
  return Ok{};
}

Status WritebackQueue::flush_all() {
  while (!pending_.empty()) {
    Pending next = pending_.front();
    pending_.pop_front();
    auto done = finish(next);
    if (!done) return done;
  }
  return Ok{};
}

}  // namespace recis_convert
