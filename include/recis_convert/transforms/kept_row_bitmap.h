// The rows a part keeps, as the count pass decided them: one bit per source row (1 = kept; row r is bit r % 8 of
// byte r / 8), written once by the rank that counts the part into a scratch folder of the staging directory, and
// read by every rank that writes one of the part's slots. The write pass then reads one bit per row beside each
// slot, not the decision columns again (8 bytes of step_filter, or a whole embedding row under --evict-l2-below),
// and knows a chunk's kept rows before it reads the chunk, so it can read just those (copy_engine.h). Memory is one
// chunk either way, whatever the part's size. The folder is removed before the export is published.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/common/file_io.h"

namespace recis_convert {

class KeptRowBitmapWriter {
 public:
  // A new file at `path` (O_EXCL). Failures are kOutput.
  static Result<KeptRowBitmapWriter> create(const std::string& path);
  // The next n rows' decisions (keep[i] is 0 or 1).
  Status append(const unsigned char* keep, uint64_t n);
  // Writes what is pending and closes the file.
  Status finish();

 private:
  static constexpr size_t kFlushBytes = size_t{64} << 10;
  std::string path_;
  std::unique_ptr<FileDescriptor> fd_;
  std::vector<unsigned char> bytes_;  // whole bytes not yet written, then the partial last one
  uint64_t rows_ = 0;  // appended so far
};

class KeptRowBitmapReader {
 public:
  // Opens a bitmap of `rows` rows; a file of another size is kOutput (the scratch folder was tampered with).
  static Result<KeptRowBitmapReader> open(const std::string& path, uint64_t rows);
  // keep[i] for rows [first, first + n) (within the rows); returns how many are 1.
  Result<uint64_t> read(uint64_t first, uint64_t n, unsigned char* keep);
  // The same rows' kept ones, as offsets from `first` in ascending order (replacing `kept`): the cost follows the
  // kept rows, not n, since a byte without a kept row is skipped whole.
  Status read_kept(uint64_t first, uint64_t n, std::vector<uint32_t>& kept);

 private:
  std::string path_;
  uint64_t rows_ = 0;
  std::unique_ptr<FileDescriptor> fd_;
  std::vector<unsigned char> bytes_;

  Status read_bytes(uint64_t first, uint64_t n);  // the bytes of rows [first, first + n) into bytes_
};

// The bitmaps' folder inside a staging directory ("" for none: a dry run has no staging directory).
std::string kept_row_bitmap_dir(const std::string& staging_dir);

}  // namespace recis_convert
