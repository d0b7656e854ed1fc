// The rows of a merge (commands/merge.h) as the row loop reads them: one slot of one part of the base export with
// the deltas applied by id, so that a merged tensor takes the export's road (the copy engine's ranges, the row
// loop, the row transforms) like a tensor of a checkpoint:
//   - a base row whose id a delta has is the newest delta's row (upsert);
//   - after the base's rows come the rows of the ids the part gains, in order of first appearance (delta_rows.h).
// The delta rows of a read are fetched in runs of consecutive rows of one delta part (a delta keeps its base's row
// order, so they mostly are). Memory: the caller's rows and, during a read, a run of at most kMaxRunBytes and the
// places of the delta rows of kWindowRows rows; none between reads (a spilled part's places are read from its spill file).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/sources/column_reader.h"
#include "recis_convert/sources/delta_rows.h"
#include "recis_convert/sources/part_merge.h"
#include "recis_convert/sources/row_reader.h"

namespace recis_convert {

class MergedRows final : public RowReader {
 public:
  static constexpr uint64_t kMaxRunBytes = 1u << 20;  // delta rows read at once
  static constexpr uint64_t kWindowRows = 32768;      // rows whose delta rows are placed at once

  // `base`: the slot's tensor in the base file; `slot`: its name in the delta parts; `files` opens the deltas'
  // files once per rank; `verifier` (may be null) sees the base rows read. `deltas`, `files` and `verifier` must
  // outlive the reader; it shares the part's merge.
  MergedRows(FileColumn base, std::shared_ptr<const PartMerge> merge, const DeltaRows& deltas, std::string slot,
             OpenInputs& files, InputVerifier* verifier = nullptr)
      : base_(std::move(base)),
        merge_(std::move(merge)),
        deltas_(deltas),
        slot_(std::move(slot)),
        files_(files),
        verifier_(verifier) {}

  size_t columns() const override { return 1; }
  uint64_t row_bytes(size_t) const override { return base_.row_bytes; }
  // Merged rows [first, first + n) (or the `kept` ones). A delta part without the slot, or with rows of another
  // width, is bad input naming its file and tensor.
  Status read(uint64_t first, uint64_t n, const std::vector<uint32_t>* kept, unsigned char* const* into) override;

 private:
  struct Fetch {  // a delta row to copy into place
    DeltaRows::Location at;
    unsigned char* into = nullptr;
  };
  Status fetch(const std::vector<Fetch>& fetches);

  FileColumn base_;
  std::shared_ptr<const PartMerge> merge_;
  const DeltaRows& deltas_;
  std::string slot_;
  OpenInputs& files_;
  InputVerifier* verifier_;
  std::vector<Fetch> fetches_;
  std::vector<PartMerge::Replacement> replaced_;
  std::vector<DeltaRows::Location> added_;
  std::vector<uint32_t> base_kept_;
  std::vector<unsigned char> run_;
};

}  // namespace recis_convert
