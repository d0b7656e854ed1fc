// The small files of an export besides the data: written or copied into the staging directory and described
// (size, XXH3-64) for the manifest.
#pragma once

#include <optional>
#include <string>

#include "recis_convert/common/checksum.h"
#include "recis_convert/common/error.h"
#include "recis_convert/metadata/json_text.h"
#include "recis_convert/metadata/manifest.h"

namespace recis_convert {

// Size and checksum of a file already written (read back with a fixed buffer); `name` is its path in the export.
// piece_bytes: the checksum's pieces (checksum.h); 0 for a whole-file checksum.
Result<ExtraFile> describe_written_file(const std::string& path, const std::string& name, uint64_t piece_bytes = 0);

// Writes `content` as <dir>/<name> (which must not exist).
Result<ExtraFile> write_metadata_file(const std::string& dir, const std::string& name, const std::string& content,
                                      bool fsync);

// A metadata file written as its text is made (json_text.h), checksummed on the way. finish() describes it,
// or gives the first write error naming the file.
class MetadataFileOut final : public TextOut {
 public:
  MetadataFileOut(const std::string& dir, const std::string& name, bool fsync);
  ~MetadataFileOut() override;
  MetadataFileOut(const MetadataFileOut&) = delete;
  MetadataFileOut& operator=(const MetadataFileOut&) = delete;
  Result<ExtraFile> finish();

 private:
  void flush() override;
  std::string name_, path_;
  bool fsync_;
  int fd_ = -1;
  uint64_t bytes_ = 0;
  Checksum checksum_;
  std::optional<Error> error_;
};

// Copies an --asset-files file into `dir` under its own name, checksummed on the way.
Result<ExtraFile> copy_asset(const std::string& source, const std::string& dir, bool fsync);
// Copies `source` to <dir>/<name>, creating the folders `name` names, checksummed on the way (merge carries the
// dense export, fg.json and assets of an export this way).
Result<ExtraFile> copy_file_into(const std::string& source, const std::string& dir, const std::string& name,
                                 bool fsync);

// fg.json and the mc config are shipped byte for byte, after checking they are JSON objects (strict: no duplicate
// keys). Errors are kBadInput naming the file.
Result<std::string> read_json_config(const std::string& path, const char* what);

}  // namespace recis_convert
