// The write pass of a merge (commands/merge.h): one data file of the base export, with the deltas applied by id.
//   - a base row whose id a delta has takes the newest delta's row, in every slot (upsert);
//   - the ids of the deltas that the base does not have are appended to the part whose slice holds
//     `id % 65536`, after its own rows, in order of first appearance (delta_rows.h);
//   - a dense tensor (an optimizer scalar) is the newest delta's, if one has it, else the base's.
// The output header is computed before any row moves, from the base header and the parts' new ids, so the file
// is written front to back with one buffer, and checksummed as it goes. Memory: the buffer, a MiB of ids, and
// per part the ids it gains.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/sinks/file_export.h"
#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/sources/delta_rows.h"

namespace recis_convert {

struct MergeSettings {
  std::string staging_dir;
  size_t buffer_bytes = 8u << 20;
  bool fsync = true;
};

class MergeWriter {
 public:
  MergeWriter(const CheckpointListing& base, const DeltaRows& deltas, MergeSettings settings);

  // Writes base.files[file] merged into the staging directory. Bad input names the file (and tensor, row).
  Result<FileResult> write(size_t file);

 private:
  struct PartGain {  // what a base part gains: the deltas' ids in its slice that it does not have, in order
    std::vector<int64_t> new_ids;
  };
  Result<const PartGain*> gain_of(const std::string& table, const std::string& suffix, std::string_view slice);
  Result<RowColumn> base_column(const std::string& key);
  Status write_sparse(int in, const RowColumn& column, const std::string& table, const std::string& slot,
                      const RowColumn& ids, const PartGain& gain, int out, const std::string& out_path,
                      class Checksum& checksum);
  Status append(int out, const std::string& out_path, const char* data, size_t size, class Checksum& checksum);
  Status read_delta_row(const std::string& slot, const DeltaRows::Location& at, uint64_t row_bytes, char* into);
  Result<int> opened(const std::string& path);  // a source file (base or delta), opened once

  const CheckpointListing& base_;
  const DeltaRows& deltas_;
  MergeSettings settings_;
  std::vector<char> buffer_;
  std::map<std::string, PartGain> gains_;  // by the part's id key
  std::map<uint32_t, SafetensorsHeader> headers_;  // base files whose headers were read for their id tensors
  std::map<std::string, std::unique_ptr<FileDescriptor>> files_;  // by path
};

}  // namespace recis_convert
