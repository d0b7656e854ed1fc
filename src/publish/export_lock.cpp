#include "recis_convert/publish/export_lock.h"

#include "recis_convert/common/file_io.h"
#include "recis_convert/publish/export_location.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace recis_convert {
namespace {

// A lock file removed by its holder may be opened by a second run just before: that run would lock a file that is
// no longer the path's. It notices (the path names another inode, or none) and starts over; a few rounds at most.
constexpr int kMaxLockAttempts = 16;

std::string lock_path_of(const std::string& export_dir) {
  const SplitPath where = split_path(export_dir);
  return where.parent + "/." + where.base + ".recis-lock";
}

std::string holder_of(int fd) {
  char text[256] = {0};
  const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
  std::string holder = n > 0 ? std::string(text, static_cast<size_t>(n)) : "";
  while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
  return holder.empty() ? "a run that has not written its name yet" : holder;
}

}  // namespace

Result<ExportLock> ExportLock::acquire(const std::string& export_dir) {
  const std::string path = lock_path_of(export_dir);
  for (int attempt = 0; attempt < kMaxLockAttempts; ++attempt) {
    const int raw = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (raw < 0) return output_error(path, std::string("cannot create the export's lock file: ") + std::strerror(errno));
    FileDescriptor fd(raw);
    struct flock lock {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    if (::fcntl(fd.get(), F_SETLK, &lock) != 0) {
      if (errno == EAGAIN || errno == EACCES) {
        return output_error(export_dir, "another recis-convert run is exporting here (" + holder_of(fd.get()) +
                                            "); nothing was done");
      }
      return output_error(path, std::string("cannot lock: ") + std::strerror(errno));
    }
    struct stat held {}, named {};
    if (::fstat(fd.get(), &held) != 0 || ::stat(path.c_str(), &named) != 0 || held.st_ino != named.st_ino ||
        held.st_dev != named.st_dev) {
      continue;  // its holder removed it between our open and our lock: take the path's new file
    }
    char since[32] = {0};
    const std::time_t now = std::time(nullptr);
    struct tm utc {};
    ::gmtime_r(&now, &utc);
    std::strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &utc);
    const std::string who = "pid " + std::to_string(::getpid()) + " on " + host_name() + " since " + since + "\n";
    if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), who.data(), who.size(), 0) < 0) {
      return output_error(path, std::string("cannot write: ") + std::strerror(errno));
    }
    return ExportLock(path, std::move(fd));
  }
  return output_error(path, "the export's lock file keeps being replaced; is another run starting and stopping?");
}

ExportLock::~ExportLock() {
  // removed while still held, so no other run can have locked this file in between
  if (fd_.get() >= 0) ::unlink(path_.c_str());
}

}  // namespace recis_convert
