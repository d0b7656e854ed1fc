// The layout of one exported safetensors file: the new preamble, then source byte ranges in order, each copied
// as it is or, when a row transform rewrites the slot (SlotRows::rewritten), read row by row and rewritten. A
// tensor's rows may also come from a RowReader instead of the source file's bytes (a merge's: the base's rows
// upserted with the deltas', sources/merged_rows.h); they then take the same row road.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/formats/safetensors.h"
#include "recis_convert/plan/eviction_plan.h"
#include "recis_convert/sources/row_reader.h"
#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

// A tensor's rows from a reader rather than from the source file's bytes: `rows` rows of column 0 of `reader`,
// `tensor` describing them (dtype, shape with the row count; a dense tensor is one row). A sparse tensor's `ids`
// are its part's ids as they stand beside these rows (int64, one per row), which route them with --reshard.
struct RowsFrom {
  std::shared_ptr<RowReader> reader;
  uint64_t rows = 0;
  TensorInfo tensor;
  std::shared_ptr<RowReader> ids;
};

// A byte range of the source file to copy unchanged, or, with `rewrite`, `rows` rows to pass through the row
// transforms that rewrite their slot.
struct CopyRange {
  CopyRange(uint64_t offset_, uint64_t length_, std::shared_ptr<const SlotRows> rewrite_ = nullptr,
            uint64_t rows_ = 0, std::shared_ptr<const PartSelection> selection_ = nullptr,
            std::shared_ptr<RowReader> reader_ = nullptr)
      : offset(offset_), length(length_), rewrite(std::move(rewrite_)), rows(rows_), selection(std::move(selection_)),
        reader(std::move(reader_)) {}
  uint64_t offset;  // in the source file (without a reader)
  uint64_t length;  // the source rows' bytes
  std::shared_ptr<const SlotRows> rewrite;
  uint64_t rows;  // with rewrite, selection or reader: the source rows
  // With selection (eviction): only the rows the part's decision keeps are written, in order.
  std::shared_ptr<const PartSelection> selection;
  // With reader: the rows are read from it (column 0), not from the source file at `offset`.
  std::shared_ptr<RowReader> reader;

  bool by_rows() const { return rewrite || selection || reader; }
  uint64_t source_row_bytes() const { return rows ? length / rows : 0; }
  uint64_t output_row_bytes() const { return rewrite ? rewrite->output().row_bytes() : source_row_bytes(); }
  uint64_t output_length() const {
    if (!by_rows()) return length;
    return (selection ? selection->kept : rows) * output_row_bytes();
  }
};

// What the export of one data file writes: the new preamble (length + header), then the source ranges in order.
struct FileLayout {
  std::vector<TensorInfo> kept;     // with offsets in the output file, header order kept
  std::vector<TensorInfo> dropped;  // with offsets in the source file
  std::string preamble;             // u64 length + JSON header + padding
  std::vector<CopyRange> ranges;    // source byte ranges, adjacent copied ones merged
  uint64_t output_bytes() const;
};

// The bytes of an output part (the preamble, a range) at [part_begin, part_begin + length) that lie in the output
// window [begin, end), counted from the part's first byte: [from, to), none when from == to.
struct PartSpan {
  uint64_t from = 0, to = 0;
  bool empty() const { return from >= to; }
};
PartSpan part_span(uint64_t part_begin, uint64_t length, uint64_t begin, uint64_t end);

// Keeps the tensors whose keep[i] is true (i indexes header.tensors), in source header order, back to back.
// A tensor with rewrites[i] (optional; a kept slot that SlotRows::rewritten) takes that slot's output layout; one
// with selections[i] (optional; its part's eviction decision) keeps selection->kept of its rows; one with from[i]
// (optional) has the reader's rows in place of its own.
FileLayout lay_out_filtered_file(const SafetensorsHeader& header, const std::vector<bool>& keep,
                                 const std::vector<std::shared_ptr<const SlotRows>>& rewrites = {},
                                 const std::vector<std::shared_ptr<const PartSelection>>& selections = {},
                                 const std::vector<std::optional<RowsFrom>>& from = {});

// The whole file, unchanged: used when every row transform is the identity (copy mode).
FileLayout lay_out_verbatim_copy(const SafetensorsHeader& header);

}  // namespace recis_convert
