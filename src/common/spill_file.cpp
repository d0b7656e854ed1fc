#include "recis_convert/common/spill_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace recis_convert {

Result<SpillFile> SpillFile::create(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {  // a file system without O_TMPFILE
    std::string name = dir + "/.spill-XXXXXX";
    fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd >= 0) ::unlink(name.c_str());
  }
  if (fd < 0) return output_error(dir, std::string("cannot create a spill file: ") + std::strerror(errno));
  return SpillFile(FileDescriptor(fd), dir);
}

Status SpillFile::write(uint64_t at, const SpillRecord* records, size_t count) const {
  return pwrite_all(fd_.get(), records, count * kRecordBytes, at * kRecordBytes, dir_ + " (spill file)");
}

Status SpillFile::read(uint64_t at, size_t count, SpillRecord* out) const {
  auto read = read_exact(fd_.get(), at * kRecordBytes, count * kRecordBytes, out, dir_ + " (spill file)", "records");
  if (!read) return Error{ExitCode::kOutput, read.error().file, read.error().message};  // the export's disk
  return Ok{};
}

Status SpillWriter::flush() {
  if (buffer_.empty()) return Ok{};
  auto written = file_->write(next_, buffer_.data(), buffer_.size());
  next_ += buffer_.size();
  buffer_.clear();
  return written;
}

Status SpillReader::fill() {
  const size_t n = static_cast<size_t>(std::min<uint64_t>(capacity_, end_ - next_));
  buffer_.resize(n);
  used_ = 0;
  auto read = file_->read(next_, n, buffer_.data());
  next_ += n;
  return read;
}

Result<SpillRecord> SpillReader::peek() {
  if (used_ == buffer_.size()) {
    auto filled = fill();
    if (!filled) return filled.error();
  }
  return buffer_[used_];
}

Result<SpillRecord> SpillReader::next() {
  auto record = peek();
  if (record) ++used_;
  return record;
}

}  // namespace recis_convert
