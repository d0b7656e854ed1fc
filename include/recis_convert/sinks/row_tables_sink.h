// Row tables (a HugeCTR model's, a Distributed Checkpoint's) into RecIS's layout (row_table_files.h): one file per
// table, or the M part files of --reshard, created by rank 0 once the count pass placed every rank's rows
// (pipeline/row_table_stage.h). Every rank writes its contiguous range of every table's rows into them (with
// --resume, journaling each range); after the barrier rank 0 fsyncs the files and describes them from the
// checksums every rank shared in (its ranks stream no files of their own).
#pragma once

#include "recis_convert/sinks/sink.h"

namespace recis_convert {

class RowTablesSink : public Sink {
 public:
  Status prepare_on_root(const JobOptions& options, const SourceDescription& source,
                         const std::string& staging_dir) const override;
  StreamOutcome stream(const StreamRequest& request, Comm& comm, const Log& log) const override;
  std::vector<std::string> shared_files(const StreamRequest& request) const override;
  Status describe_on_root(const StreamRequest& request, bool succeeded, std::vector<FileResult>& files,
                          std::map<std::string, int>& owner, const SharedFileDigests& shared,
                          CheckpointListing& listing) const override;
};

}  // namespace recis_convert
