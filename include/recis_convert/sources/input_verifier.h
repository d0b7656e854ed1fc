// A merge's base files checked against their manifest from the bytes the merge reads anyway (issue 37). Reading
// every input once to verify it, then again to merge it, cost a merge a fifth of its time; instead each read of a
// file is hashed where it extends what is hashed so far, a read beyond that first hashes the gap (read now), a
// read of bytes hashed already is passed over, and finish() reads what no read reached. Every byte of a file is so
// hashed exactly once and in order, whatever the order of the reads: at worst (reads from the end backwards, rows
// left out by eviction, bytes the kernel copied) it is the separate verification read it replaces.
//
// Nothing a merge writes is published before finish() passed on every rank (commands/merge.cpp), so a byte that
// differs from the manifest still stops the merge, with verify's words; only which stage reports it moved.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/common/checksum.h"
#include "recis_convert/common/error.h"

namespace recis_convert {

class InputVerifier {
 public:
  struct Expected {  // a manifest's entry (commands/verify.h's ManifestFile)
    uint64_t bytes = 0;
    uint64_t checksum = 0;
    uint64_t piece_bytes = 0;  // 0: one piece
  };
  static constexpr size_t kGapReadBytes = 1u << 20;  // a gap or the rest is read this much at a time

  // The files to check, by the path they are read at.
  explicit InputVerifier(const std::map<std::string, Expected>& files);

  // `data` holds bytes [offset, offset + size) of `path`, just read through `fd`. Other paths are not checked here.
  // A gap before `offset` is read through `fd` (an error names the file).
  Status saw(const std::string& path, int fd, uint64_t offset, const void* data, uint64_t size);

  // Each file's bytes that no read reached, read now; then every file whose checksum differs from its manifest's,
  // as "path: checksum X, manifest.json says Y" (verify's words), in path order. An unreadable file is an error,
  // a signal kInterrupted. `only`: that file alone, if it is one of them (after a failed stream, the file its error
  // names: the rest of a rank's share is not read to report a failure).
  Result<std::vector<std::string>> finish(const std::optional<std::string>& only = std::nullopt);

  // Bytes hashed from the reads of others, and read here (gaps and rests): the second read it saved, and not.
  uint64_t bytes_seen() const { return seen_; }
  uint64_t bytes_read() const { return read_; }

 private:
  struct File {
    Expected expected;
    uint64_t hashed = 0;  // bytes [0, hashed) are in `sum`
    std::unique_ptr<PieceChecksum> sum;
  };
  Status read_into(const std::string& path, int fd, File& file, uint64_t end);

  std::map<std::string, File> files_;
  uint64_t seen_ = 0, read_ = 0;
};

}  // namespace recis_convert
