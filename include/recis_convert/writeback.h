// Durability of exported files without serializing the copy on the disk: each finished file gets its
// writeback started at once (sync_file_range WRITE, asynchronous), and is fsynced later, when more than
// `max_pending` files wait or at the end of the rank's share. An fsync per file right after writing it would make
// every rank wait for the disk between files.
#pragma once

#include <cstddef>
#include <deque>
#include <string>

#include "recis_convert/error.h"

namespace recis_convert {

class WritebackQueue {
 public:
  explicit WritebackQueue(size_t max_pending) : max_pending_(max_pending) {}
  ~WritebackQueue();  // closes whatever is pending, without fsync (the export is being abandoned)
  WritebackQueue(const WritebackQueue&) = delete;
  WritebackQueue& operator=(const WritebackQueue&) = delete;

  // Takes ownership of `fd` (a fully written file). Errors (kOutput) name the file that failed.
  Status add(int fd, const std::string& path);

  // fsyncs and closes every pending file.
  Status flush_all();

 private:
  struct Pending {
    int fd;
    std::string path;
  };
  Status finish(const Pending& pending);

  size_t max_pending_;
  std::deque<Pending> pending_;
};

}  // namespace recis_convert
