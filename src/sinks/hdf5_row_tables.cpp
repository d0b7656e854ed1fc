#include "recis_convert/sinks/hdf5_row_tables.h"

#include <memory>

#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/dcp_metadata.h"
#include "recis_convert/sources/dcp_columns.h"
#include "recis_convert/sources/hugectr_export.h"

namespace recis_convert {
namespace {

// A DCP table's slot as rows from a reader: the ids its row indices, the embeddings stitched from its chunks.
RowsFrom dcp_slot_rows(const RowTable& t, size_t k) {
  const RowTableSlot& slot = t.slots[k];
  const uint64_t rows = t.source.rows();
  auto ids = std::make_shared<DcpRowIndices>();
  TensorInfo tensor = t.tensors[k];
  tensor.dtype = slot.source.dtype;
  tensor.dtype_spelling = slot.source.dtype_spelling;
  tensor.shape = slot.source.tensor_shape(rows);
  std::shared_ptr<RowReader> reader = ids;
  if (row_table_column(slot.slot) != kRowTableIds) {
    reader = std::make_shared<ColumnOf>(t.source.open_rows(), row_table_column(slot.slot));
  }
  return RowsFrom{std::move(reader), rows, std::move(tensor), std::move(ids)};
}

// --evict-l2-below: each tensor of the table gets its kept rows and the table's decision, made on the embeddings as
// read (a DCP table's from a reader of its own, whose rows no file holds).
void select_kept_rows(const JobOptions& o, const RowTable& t, const RowRangeCount& c, RowTablesShare& share,
                      size_t first_tensor, const std::string& staging_dir) {
  auto embedding = std::find_if(t.slots.begin(), t.slots.end(), [](const RowTableSlot& s) { return s.slot == "embedding"; });
  if (embedding == t.slots.end()) return;  // no embedding exported: nothing to measure (the CLI refuses it)
  auto selection = std::make_shared<PartSelection>();
  selection->part = PartId{t.name, "part_0_1"};
  selection->decision.embedding = DecisionColumn{row_table_slot_file(t, *embedding, staging_dir),
                                                 t.tensors[static_cast<size_t>(embedding - t.slots.begin())].name, 0,
                                                 c.rows, t.source.embedding_dtype(), t.source.dim()};
  selection->decision.l2_below = *o.eviction.l2_below;
  selection->rows = c.rows;
  selection->kept = c.kept;
  for (size_t k = 0; k < t.slots.size(); ++k) {
    SourceTensor& s = share.tensors[first_tensor + k];
    s.kept_rows = static_cast<int64_t>(c.kept);
    const PieceKey key{s.file, s.key};
    share.sources.selections.emplace(key, selection);
    if (!t.source.hugectr()) {
      share.sources.decision_rows.emplace(
          key, std::make_shared<ColumnOf>(t.source.open_rows(), kRowTableEmbeddings));
    }
  }
  RowTable kept = t;
  resize_row_table(kept, c.kept);
  share.results.back().kept = kept.tensors;
}

}  // namespace

std::string row_table_slot_file(const RowTable& t, const RowTableSlot& slot, const std::string& staging_dir) {
  if (t.source.hugectr()) return hugectr_slot_path(t, slot, staging_dir);
  return resolved_path(t.source.path()) + "/" + kDcpMetadataFile;
}

Result<RowTablesShare> row_tables_share(const JobOptions& o, const RowTables& model, const std::vector<size_t>& mine,
                                        int rank, const std::string& staging_dir, const RowTablePlan* counts) {
  RowTablesShare share;
  for (size_t i : mine) {
    const RowTable& t = model.tables[i];
    if (!o.dry_run) {
      auto unpacked = unpack_if_legacy(t, staging_dir, o.buffer_mib << 20);
      if (!unpacked) return unpacked.error();
    }
    const size_t first_tensor = share.tensors.size();
    for (size_t k = 0; k < t.slots.size(); ++k) {
      const RowTableSlot& slot = t.slots[k];
      SourceTensor src;
      src.key = t.tensors[k].name;  // <table>.<slot>/part_0_1
      src.sparse = true;
      src.child = t.name;
      src.slot = slot.slot;
      src.slice = kRowTableSlice;
      src.dtype = slot.source.dtype_spelling;
      src.shape = slot.source.tensor_shape(t.source.rows());
      src.file = row_table_slot_file(t, slot, staging_dir);  // absolute: the tables may live anywhere
      src.owner = rank;
      if (!t.source.hugectr()) share.sources.rows.emplace(PieceKey{src.file, src.key}, dcp_slot_rows(t, k));
      share.tensors.push_back(std::move(src));
    }
    FileResult result;
    result.name = t.file;
    result.source_bytes = t.source_bytes();
    result.kept = t.tensors;
    share.results.push_back(std::move(result));
    if (counts && o.eviction.l2_below) select_kept_rows(o, t, counts->whole_tables.at(i), share, first_tensor, staging_dir);
  }
  return share;
}

}  // namespace recis_convert
