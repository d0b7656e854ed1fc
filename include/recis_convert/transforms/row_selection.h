// Which rows of a part stay, read from the part's decision columns (its `step_filter` for --evict-older-than and
// --delta-since, its `embedding` for --evict-l2-below) a chunk at a time. The count pass uses it to size every
// exported slot of the part, and records its decisions as a bitmap (kept_row_bitmap.h); the write pass reads that
// beside each slot's rows. No rank ever holds a part's decisions whole: memory is one chunk of each column,
// whatever the part's size. A row stays when every rule given keeps it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/safetensors.h"
#include "recis_convert/plan/eviction_plan.h"
#include "recis_convert/transforms/kept_row_bitmap.h"
#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/sources/row_reader.h"

namespace recis_convert {

// The decision columns of one data file, from its checked header and its keys classified as decide_data_file
// classifies them (keys[i] for header.tensors[i]): every step_filter slot when `by_step`, every embedding slot
// when `by_norm`, and with either every id slot (check_decision_rows compares the others' rows with it). In header
// order.
std::vector<LocatedColumn> decision_columns_in(const SafetensorsHeader& header, const std::vector<KeyClass>& keys,
                                               const std::string& path, bool by_step, bool by_norm);

class RowSelector {
 public:
  // Checks the columns (int64 [N, 1] step_filter; a float embedding; equal row counts: else bad input naming the
  // part's tensor) and opens their files.
  static Result<RowSelector> open(const PartDecision& decision);
  // The same over rows a source gives in place of the columns' files (a merge's merged rows, sources/merged_rows.h):
  // a reader per decision column the decision has (its column 0).
  static Result<RowSelector> open(const PartDecision& decision, std::shared_ptr<RowReader> step_filter,
                                  std::shared_ptr<RowReader> embedding);
  // The write pass's selector of a counted part: from its bitmap when the count pass recorded one, else from its
  // decision columns.
  static Result<RowSelector> open(const PartSelection& selection);
  // The selector of a part with an eviction decision, or none for a part without (selection null): every row.
  static Result<std::optional<RowSelector>> open_if(const PartSelection* selection);

  uint64_t rows() const { return rows_; }
  // How many rows one decide() may cover: the columns' chunks stay within 1 MiB each.
  uint64_t chunk_rows() const { return chunk_rows_; }
  // keep[i] for rows [first, first + n), n <= chunk_rows(); returns how many stay.
  Result<uint64_t> decide(uint64_t first, uint64_t n, unsigned char* keep);
  // The kept rows of [first, first + n), n <= chunk_rows(), as offsets from `first` in ascending order.
  Status kept_rows(uint64_t first, uint64_t n, std::vector<uint32_t>& kept);
  // The rows that stay in the whole part; with `record`, every row's decision is appended to it too.
  Result<uint64_t> count_kept(KeptRowBitmapWriter* record = nullptr);

 private:
  static constexpr uint64_t kChunkBytes = 1u << 20;
  Status read_rows(const DecisionColumn& column, RowReader& rows, uint64_t first, uint64_t n);

  PartDecision decision_;
  std::optional<KeptRowBitmapReader> recorded_;  // the count pass's decisions, read instead of the columns
  uint64_t rows_ = 0;
  uint64_t chunk_rows_ = 1;
  std::shared_ptr<RowReader> step_filter_rows_, embedding_rows_;  // the decision columns' rows
  std::vector<std::unique_ptr<FileDescriptor>> files_;             // their files, when they are read from files
  std::vector<unsigned char> column_;  // one chunk of one column, as in the file
  std::vector<float> values_;          // an embedding chunk as float32
  std::vector<unsigned char> keep_;    // kept_rows' decisions, without a recorded bitmap
};

}  // namespace recis_convert
