// A file of fixed-size records that holds what would not fit a rank's memory budget (a merge's join of a large
// part: sources/part_merge.h). It has no name: it is created unlinked in a directory of the export's file system
// (O_TMPFILE, or a name removed at once), so that it can never be published, and goes when it is closed, however
// the process ends.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/common/file_io.h"

namespace recis_convert {

// Three unsigned 64-bit fields: every record a join spills (an id and a row, a row and a delta row, ...).
struct SpillRecord {
  uint64_t a = 0, b = 0, c = 0;
};

class SpillFile {
 public:
  static constexpr size_t kRecordBytes = sizeof(SpillRecord);

  // A new, empty, unnamed file in `dir`.
  static Result<SpillFile> create(const std::string& dir);

  // Records at record index `at` (the file grows as needed).
  Status write(uint64_t at, const SpillRecord* records, size_t count) const;
  // `count` records from index `at` into `out`; reading past what was written is an internal error.
  Status read(uint64_t at, size_t count, SpillRecord* out) const;

 private:
  SpillFile(FileDescriptor fd, std::string dir) : fd_(std::move(fd)), dir_(std::move(dir)) {}
  FileDescriptor fd_;
  std::string dir_;  // for messages
};

// Records appended in order through a buffer of a fixed size, from index `at` on.
class SpillWriter {
 public:
  SpillWriter(const SpillFile& file, uint64_t at, size_t buffer_records)
      : file_(&file), next_(at), capacity_(buffer_records) {}
  Status add(const SpillRecord& record) {
    if (buffer_.capacity() < capacity_) buffer_.reserve(capacity_);  // once: no copies as it grows
    buffer_.push_back(record);
    return buffer_.size() >= capacity_ ? flush() : Status(Ok{});
  }
  Status flush();
  uint64_t end() const { return next_ + buffer_.size(); }  // the index after the last record added

 private:
  const SpillFile* file_;
  uint64_t next_;
  size_t capacity_;
  std::vector<SpillRecord> buffer_;
};

// Records [at, end) read in order through a buffer of a fixed size.
class SpillReader {
 public:
  SpillReader(const SpillFile& file, uint64_t at, uint64_t end, size_t buffer_records)
      : file_(&file), next_(at), end_(end), capacity_(buffer_records) {}
  bool done() const { return used_ == buffer_.size() && next_ == end_; }
  // The next record (not done()); fills the buffer when it is empty.
  Result<SpillRecord> next();
  // The next record without taking it (not done()).
  Result<SpillRecord> peek();

 private:
  Status fill();
  const SpillFile* file_;
  uint64_t next_, end_;
  size_t capacity_;
  std::vector<SpillRecord> buffer_;
  size_t used_ = 0;
};

}  // namespace recis_convert
