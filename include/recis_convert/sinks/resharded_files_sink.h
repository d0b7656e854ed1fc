// --reshard of a RecIS checkpoint (or of an export, for a merge) into M part files: the count pass planned where
// every row goes and rank 0 created the files (pipeline/reshard_stage.h); each rank routes the rows of its files'
// tensors into them (reshard_writer.h). Its FileResults are the source files' (bytes read, tensors dropped); after
// the barrier rank 0 describes the part files in their place, from the checksums every rank shared in.
#pragma once

#include "recis_convert/sinks/sink.h"

namespace recis_convert {

class ReshardedFilesSink : public Sink {
 public:
  StreamOutcome stream(const StreamRequest& request, Comm& comm, const Log& log) const override;
  std::vector<std::string> shared_files(const StreamRequest& request) const override;
  Status describe_on_root(const StreamRequest& request, bool succeeded, std::vector<FileResult>& files,
                          std::map<std::string, int>& owner, const SharedFileDigests& shared,
                          CheckpointListing& listing) const override;
};

}  // namespace recis_convert
