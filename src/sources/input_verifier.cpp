#include "recis_convert/sources/input_verifier.h"

#include <algorithm>

#include "recis_convert/common/file_io.h"
#include "recis_convert/common/interrupt.h"

namespace recis_convert {

InputVerifier::InputVerifier(const std::map<std::string, Expected>& files) {
  for (const auto& [path, expected] : files) {
    File& file = files_[path];
    file.expected = expected;
    file.sum = std::make_unique<PieceChecksum>(expected.piece_bytes);
  }
}

Status InputVerifier::read_into(const std::string& path, int fd, File& file, uint64_t end) {
  std::vector<unsigned char> buffer(static_cast<size_t>(std::min<uint64_t>(kGapReadBytes, end - file.hashed)));
  while (file.hashed < end) {
    if (auto stop = interruption()) return *stop;  // a signal is not kept waiting by a whole file's read
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buffer.size(), end - file.hashed));
    auto read = read_exact(fd, file.hashed, n, buffer.data(), path, "bytes to check against its manifest");
    if (!read) return read;
    file.sum->update(buffer.data(), n);
    file.hashed += n;
    read_ += n;
  }
  return Ok{};
}

Status InputVerifier::saw(const std::string& path, int fd, uint64_t offset, const void* data, uint64_t size) {
  auto found = files_.find(path);
  if (found == files_.end()) return Ok{};
  File& file = found->second;
  const uint64_t end = std::min(offset + size, file.expected.bytes);  // a longer file: verify's size check says so
  if (end <= file.hashed) return Ok{};  // read again: hashed already
  if (offset > file.hashed) {
    auto gap = read_into(path, fd, file, offset);
    if (!gap) return gap;
  }
  const uint64_t skip = file.hashed - offset;
  file.sum->update(static_cast<const unsigned char*>(data) + skip, static_cast<size_t>(end - file.hashed));
  seen_ += end - file.hashed;
  file.hashed = end;
  return Ok{};
}

Result<std::vector<std::string>> InputVerifier::finish(const std::optional<std::string>& only) {
  std::vector<std::string> problems;
  for (auto& [path, file] : files_) {
    if (only && path != *only) continue;
    if (file.hashed < file.expected.bytes) {
      auto opened = open_input_file(path);
      if (!opened) return opened.error();
      auto rest = read_into(path, opened.value().get(), file, file.expected.bytes);
      if (!rest) return rest.error();
    }
    const uint64_t checksum = file.sum->digest();
    if (checksum != file.expected.checksum) {
      problems.push_back(path + ": checksum " + Checksum::hex(checksum) + ", manifest.json says " +
                         Checksum::hex(file.expected.checksum));
    }
  }
  return problems;
}

}  // namespace recis_convert
