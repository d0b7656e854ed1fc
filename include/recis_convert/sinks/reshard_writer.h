// --reshard M, the write pass on one rank: each kept tensor of its data files goes, row by row, to the output files
// rank 0 created (pipeline/reshard_stage.h), at the offsets the plan fixed (plan/reshard_plan.h). The row loop
// (pipeline/row_loop.h) reads a chunk of rows with the matching chunk of the part's ids, leaves the evicted rows
// out, rewrites the rest and routes them; the writer groups them by target part (a counting sort, stable: rows
// keep their order) and writes them with one pwrite per target. Memory is the one buffer, whatever the table's size.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "recis_convert/common/checksum.h"
#include "recis_convert/common/error.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/pipeline/row_loop.h"
#include "recis_convert/plan/reshard_plan.h"
#include "recis_convert/plan/slices.h"
#include "recis_convert/sinks/file_export.h"
#include "recis_convert/sinks/writeback.h"
#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

// What one rank writes: the placements of the tensors in its files (a part of the layout rank 0 planned).
struct ReshardShare {
  uint32_t count = 1;
  std::map<std::string, TensorPlacement> sparse;  // by source key
  std::map<std::string, uint64_t> dense;          // source key -> absolute offset in file 0
  std::map<std::string, std::vector<uint64_t>> table_rows;  // every table's rows per target part (model.h5's size)
};

// Rank 0, before any rank writes: the layout's M files with their headers, at their final size (`keep`: --resume,
// file_io.h's create_sized_file).
Status create_reshard_files(const ReshardLayout& layout, const std::string& staging_dir, bool keep);

// The output files, opened for writing as rows arrive (at most a few hundred at a time: M may be large).
class ReshardOutputFiles {
 public:
  // `path_of(target)`: the file of each target.
  explicit ReshardOutputFiles(std::function<std::string(uint32_t)> path_of) : path_of_(std::move(path_of)) {}
  // The files model-<m>-of-<count> in `staging_dir`.
  ReshardOutputFiles(const std::string& staging_dir, uint32_t count)
      : path_of_([staging_dir, count](uint32_t m) { return staging_dir + "/" + reshard_file_name(m, count); }) {}
  Result<int> fd(uint32_t target);
  Status close_all();
  std::string path(uint32_t target) const;

 private:
  static constexpr size_t kMaxOpen = 256;
  std::function<std::string(uint32_t)> path_of_;
  std::map<uint32_t, std::unique_ptr<FileDescriptor>> open_;
};

// Copies row r of `rows` (n rows of row_bytes) to grouped[fill[slot_of[r]]++]: the scatter of a stable counting
// sort, `fill` holding each group's first row. Rows keep their order within a group.
void group_rows(const unsigned char* rows, uint64_t row_bytes, const uint32_t* slot_of, uint64_t n, uint64_t* fill,
                unsigned char* grouped);

// Which of a tensor's placements each of its routed rows goes to: a table from target part to the placement's
// index, set for one tensor's (or HugeCTR range's) placements at a time. A row whose target has no placement has an
// id the count pass did not see there: the file changed during the run.
class PlacementIndex {
 public:
  explicit PlacementIndex(uint32_t parts) : index_(parts, kNone) {}
  void set(const std::vector<Placement>& targets);
  // index[r] for the targets of n rows: none, or the first row whose target has no placement.
  std::optional<uint64_t> look_up(const uint32_t* targets, uint64_t n, uint32_t* index) const;

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  std::vector<uint32_t> index_;
  std::vector<uint32_t> set_;  // the targets set now, cleared by the next set()
};

// The error of a routed row whose target has no placement (PlacementIndex::look_up).
Error unplaced_row(const std::string& path, const std::string& what, uint64_t row);

// The rows of one source tensor on their way to their targets (Placement: where its first row for each goes).
// Each write() takes a chunk of rows with each row's target as an index into the placements, groups them by
// target in `scratch` (a stable counting sort: rows keep their order) and writes each group with one pwrite at
// that target's cursor. With a WritebackStarter, every 32 MiB written is handed to it.
class RowRouter {
 public:
  // `checksum`: keep the XXH3-64 of what is written at each target (a --resume journal's regions).
  RowRouter(const std::vector<Placement>& targets, ReshardOutputFiles& files, WritebackStarter* writeback,
            bool checksum = false);
  // `scratch` has room for n rows.
  Status write(const unsigned char* rows, uint64_t row_bytes, const uint32_t* index, uint64_t n,
               unsigned char* scratch);
  // Hands what is written and not yet started to the WritebackStarter.
  void finish();
  // Per target: the bytes written there, and (with `checksum`) their XXH3-64.
  uint64_t written(size_t target) const { return cursor_[target] - targets_[target].offset; }
  uint64_t checksum(size_t target) const { return checksums_.at(target)->digest(); }

 private:
  static constexpr uint64_t kWritebackBytes = 32u << 20;
  const std::vector<Placement>& targets_;
  ReshardOutputFiles& files_;
  WritebackStarter* writeback_;
  std::vector<uint64_t> cursor_, started_;      // per target: the next row's offset, the first not yet started
  std::vector<uint64_t> count_, start_, fill_;  // per target, in the current chunk
  uint64_t unstarted_ = 0;
  std::vector<std::unique_ptr<Checksum>> checksums_;  // per target, with `checksum`
};

class ReshardWriter {
 public:
  // `start_writeback`: start the disk writes of what it wrote as it goes (the export is fsynced after the barrier).
  ReshardWriter(size_t buffer_bytes, const std::string& staging_dir, const ReshardShare& share,
                bool start_writeback = false)
      : buffer_(std::max<size_t>(buffer_bytes, 4096)),
        files_(staging_dir, share.count),
        share_(share),
        part_of_(share.count),
        placements_(share.count) {
    if (start_writeback) writeback_ = std::make_unique<WritebackStarter>();
  }
  ReshardWriter(const ReshardWriter&) = delete;  // its row loop holds its buffer
  ReshardWriter& operator=(const ReshardWriter&) = delete;

  // The kept tensors of one data file, decided as for any export (decide_data_file), into the output files.
  // Returns the file's result: its source bytes and dropped tensors (the output files are described by rank 0).
  // With `dry_run`, decides only.
  // With `tensor_rows` (a merge), a tensor's rows may come from elsewhere (file_export.h).
  Result<FileResult> write_file(const CheckpointListing& listing, const DataFile& file,
                                const RowTransformChain& transforms, const PartSelections* selections, bool dry_run,
                                const TensorRowsOf& tensor_rows = nullptr);
  Status finish() { return files_.close_all(); }

  // Called after every chunk with the source bytes it read (for progress lines); may be empty.
  void set_progress_hook(std::function<void(uint64_t)> hook) { progress_ = std::move(hook); }

 private:
  // `from`: the rows that stand in for the file's tensor, with their ids (null: the file's own).
  Status write_sparse(int src_fd, const std::string& src_path, const TensorInfo& tensor, uint64_t data_start,
                      const TensorPlacement& placement, const SlotRows* rewrite,
                      const std::shared_ptr<const PartSelection>& selection, const RowsFrom* from);
  Status write_dense(int src_fd, const std::string& src_path, const TensorInfo& tensor, uint64_t data_start,
                     uint64_t offset);
  Status write_dense(const RowsFrom& rows, uint64_t offset);

  std::vector<char> buffer_;
  RowLoop row_loop_{buffer_};  // a tensor's rows, in buffer_
  std::vector<uint32_t> slot_of_;  // a chunk's rows' indices into their tensor's placements
  ReshardOutputFiles files_;
  const ReshardShare& share_;
  PartOfIdTable part_of_;
  PlacementIndex placements_;  // the current tensor's
  std::unique_ptr<WritebackStarter> writeback_;
  std::function<void(uint64_t)> progress_;
};

}  // namespace recis_convert
