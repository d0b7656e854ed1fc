// Streaming XXH3-64 checksum of exported files (libxxhash): fast enough to run on every byte on the way out.
//
// A file's checksum is taken in pieces (PieceChecksum): XXH3-64 of the bytes for a file of one piece, else XXH3-64
// of its pieces' XXH3-64s. Pieces let several ranks checksum one file, each the pieces it wrote or reads, with no
// second pass over it; the piece size is the export's --chunk-mib, so the checksum is the same whatever N.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"

struct XXH3_state_s;

namespace recis_convert {

struct FileDigest {
  uint64_t bytes = 0;
  uint64_t checksum = 0;
};

class Checksum {
 public:
  Checksum();
  ~Checksum();
  Checksum(const Checksum&) = delete;
  Checksum& operator=(const Checksum&) = delete;

  void update(const void* data, size_t size);
  uint64_t digest() const;
  void reset();  // back to the checksum of nothing

  static uint64_t of(const void* data, size_t size);
  // 16 lower-case hex digits, the form used in manifest.json.
  static std::string hex(uint64_t digest);
  // Streams a whole file (1 MiB at a time) and checksums it in pieces of `piece_bytes` (PieceChecksum). A file
  // that cannot be read is an error of kind `on_error` (kOutput when reading back what we wrote, kBadInput when
  // verifying an export) naming the path.
  static Result<FileDigest> of_file(const std::string& path, ExitCode on_error, uint64_t piece_bytes);

 private:
  XXH3_state_s* state_;
};

// The checksum of a byte stream in pieces of piece_bytes (0: the whole stream is one piece). The pieces'
// XXH3-64s are combined in order: a stream of one piece (or none: empty) has its plain XXH3-64, so a file smaller
// than a piece is checksummed as any tool would; a longer one has the XXH3-64 of its pieces' XXH3-64s, each as 8
// little-endian bytes.
class PieceChecksum {
 public:
  explicit PieceChecksum(uint64_t piece_bytes) : piece_bytes_(piece_bytes) {}

  void update(const void* data, size_t size);
  // The pieces so far, the last (partial or empty) one included.
  std::vector<uint64_t> pieces() const;
  uint64_t digest() const { return combine(pieces()); }

  static uint64_t combine(const std::vector<uint64_t>& pieces);
  // How many pieces a file of `bytes` has (at least one).
  static uint64_t count(uint64_t bytes, uint64_t piece_bytes);

 private:
  uint64_t piece_bytes_;
  uint64_t in_piece_ = 0;  // bytes of the current piece so far
  Checksum current_;
  std::vector<uint64_t> done_;
};

// Checksums pieces [first, first + count) of a file (fewer where the file ends), each of piece_bytes (0: the
// whole file is piece 0): what one rank contributes when ranks share the reading of a file (PieceChecksum::combine
// joins every rank's, in order).
Result<std::vector<uint64_t>> checksum_file_pieces(const std::string& path, uint64_t piece_bytes, uint64_t first,
                                                   uint64_t count, ExitCode on_error);

// XXH3-64 of bytes [offset, offset + bytes) of a file (a --resume journal's region): an error of kind `on_error` if
// they cannot all be read.
Result<uint64_t> checksum_file_range(const std::string& path, uint64_t offset, uint64_t bytes, ExitCode on_error);

}  // namespace recis_convert
