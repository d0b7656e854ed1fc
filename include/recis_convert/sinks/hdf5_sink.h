// --format hdf5: one model.h5 (plan/hdf5_layout.h, hdf5_export.h). Every rank checks its files' headers (or
// HugeCTR tables), all ranks exchange the summaries, compute the same plan, and write model.h5 together with
// parallel HDF5. The manifest describes the source's tensors as kept (its FileResults) and model.h5 by the
// checksum every rank shared in.
#pragma once

#include <vector>

#include "recis_convert/pipeline/row_table_stage.h"
#include "recis_convert/sinks/sink.h"
#include "recis_convert/sources/source_tensor.h"

namespace recis_convert {

// model.h5: what each rank tells every other before the layout: the tensors it will read, or that it cannot go on.
struct RankTensors {
  bool ok = true;
  std::vector<SourceTensor> tensors;
};

class Hdf5Sink : public Sink {
 public:
  StreamOutcome stream(const StreamRequest& request, Comm& comm, const Log& log) const override;
  std::vector<std::string> shared_files(const StreamRequest& request) const override;
  Status describe_on_root(const StreamRequest& request, bool succeeded, std::vector<FileResult>& files,
                          std::map<std::string, int>& owner, const SharedFileDigests& shared,
                          CheckpointListing& listing) const override;
};

}  // namespace recis_convert
