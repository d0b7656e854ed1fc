// A RecIS checkpoint's data files (or an export's, for a merge) into as many output files: each rank copies or
// filters its whole files (file_export.h, with the copy engine), then writes its pieces of the files split among
// ranks (piece_plan.h); each file's FileResult travels to rank 0. With --resume, each written file and piece is
// journaled once durable, and a next run adopts it instead of writing it again (publish/resume_journal.h).
#pragma once

#include "recis_convert/sinks/sink.h"

namespace recis_convert {

class CheckpointFilesSink : public Sink {
 public:
  StreamOutcome stream(const StreamRequest& request, Comm& comm, const Log& log) const override;
};

}  // namespace recis_convert
