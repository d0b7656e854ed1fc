// Every value of the job's own types that travels between ranks, with its one encoding (messages.h carries them).
// In one place so that a newcomer sees what the ranks tell each other, and a new field is added once.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>


#include "recis_convert/commands/merge.h"
#include "recis_convert/commands/verify.h"
#include "recis_convert/formats/hugectr_sparse.h"
#include "recis_convert/formats/safetensors.h"
#include "recis_convert/mpi/messages.h"
#include "recis_convert/pipeline/discovery.h"
#include "recis_convert/pipeline/rank_reports.h"
#include "recis_convert/plan/eviction_plan.h"
#include "recis_convert/publish/resume_journal.h"
#include "recis_convert/pipeline/eviction_stage.h"
#include "recis_convert/sources/global_step.h"
#include "recis_convert/sinks/file_export.h"
#include "recis_convert/sinks/hdf5_export.h"
#include "recis_convert/sinks/hdf5_sink.h"
#include "recis_convert/plan/hdf5_layout.h"
#include "recis_convert/sinks/packed_file_results.h"
#include "recis_convert/pipeline/row_table_stage.h"
#include "recis_convert/pipeline/reshard_stage.h"
#include "recis_convert/sinks/shared_file_checksums.h"
#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/sources/row_tables.h"
#include "recis_convert/sources/source.h"
#include "recis_convert/transforms/quantization_error.h"

namespace recis_convert {

// The dtype travels as its header spelling, which our own reader accepted: it always parses.
inline void to_json(nlohmann::json& j, const TensorInfo& t) {
  j = {{"name", t.name}, {"dtype", t.dtype_spelling}, {"shape", t.shape}, {"begin", t.begin}, {"end", t.end}};
}
inline void from_json(const nlohmann::json& j, TensorInfo& t) {
  j.at("name").get_to(t.name);
  j.at("dtype").get_to(t.dtype_spelling);
  t.dtype = parse_dtype(t.dtype_spelling).value_or(DType::kU8);
  j.at("shape").get_to(t.shape);
  j.at("begin").get_to(t.begin);
  j.at("end").get_to(t.end);
}

// Values of a million entries travel as one binary string each (a CBOR byte string): a tree node per field
// would cost more than the data.
namespace job_messages_detail {
inline nlohmann::json as_binary(const std::string& bytes) {
  return nlohmann::json::binary(std::vector<uint8_t>(bytes.begin(), bytes.end()));
}
inline std::string_view binary_of(const nlohmann::json& j) {
  const auto& bytes = j.get_binary();  // throws type_error if not binary: a corrupt message
  return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}
[[noreturn]] inline void undecodable(const char* what, const nlohmann::json& j) {
  throw nlohmann::json::other_error::create(501, std::string("undecodable ") + what, &j);
}

}  // namespace job_messages_detail

inline void to_json(nlohmann::json& j, const BlockCatalog& blocks) {
  j = job_messages_detail::as_binary(blocks.encode());
}
inline void from_json(const nlohmann::json& j, BlockCatalog& blocks) {
  auto decoded = BlockCatalog::decode(job_messages_detail::binary_of(j));
  if (!decoded) job_messages_detail::undecodable("block catalog", j);
  blocks = std::move(*decoded);
}

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DataFile, name, size, mtime_ns, ctime_ns)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CheckpointListing, source, ckpt_dir, ckpt_id, files, blocks)

inline void to_json(nlohmann::json& j, const FileResult& f) {
  using job_messages_detail::as_binary;
  j = {{"name", f.name},          {"source_bytes", f.source_bytes},           {"written", f.written},
       {"output_bytes", f.output_bytes}, {"checksum", f.checksum},           {"kept", as_binary(pack_tensors(f.kept))},
       {"dropped", as_binary(pack_tensors(f.dropped))}};
}
inline void from_json(const nlohmann::json& j, FileResult& f) {
  using job_messages_detail::binary_of;
  j.at("name").get_to(f.name);
  j.at("source_bytes").get_to(f.source_bytes);
  j.at("written").get_to(f.written);
  j.at("output_bytes").get_to(f.output_bytes);
  j.at("checksum").get_to(f.checksum);
  if (!unpack_tensors(binary_of(j.at("kept")), f.kept) || !unpack_tensors(binary_of(j.at("dropped")), f.dropped)) {
    job_messages_detail::undecodable("tensor list", j);
  }
}
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PieceBytes, read, written)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PieceShare, pieces, unreadable, errors)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PieceResult, file, piece, pieces, first_checksum_piece, checksums, bytes_in, bytes_out)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SourceTensor, key, sparse, child, slot, slice, part_rank, dtype, shape, file, offset,
                                   owner, kept_rows)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(HugectrSparseTable, path, format, rows, vec_size, has_slot_id, key_bytes,
                                   record_bytes)

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DcpChunk, offsets, sizes, file, item_offset, item_length)
// A DCP tensor's dtype travels as its header spelling, as for TensorInfo.
inline void to_json(nlohmann::json& j, const DcpTensor& t) {
  j = {{"fqn", t.fqn}, {"dtype", dtype_spelling(t.dtype)}, {"shape", t.shape}, {"chunks", t.chunks}};
}
inline void from_json(const nlohmann::json& j, DcpTensor& t) {
  j.at("fqn").get_to(t.fqn);
  auto dtype = parse_dtype(j.at("dtype").get<std::string>());
  if (!dtype) job_messages_detail::undecodable("dtype", j);
  t.dtype = *dtype;
  j.at("shape").get_to(t.shape);
  j.at("chunks").get_to(t.chunks);
}
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DcpTableSource, dir, weight)
inline void to_json(nlohmann::json& j, const RowTableSource& s) {
  if (const HugectrSparseTable* h = s.hugectr()) {
    j = {{"hugectr", *h}};
  } else {
    j = {{"dcp", std::get<DcpTableSource>(s.of)}};
  }
}
inline void from_json(const nlohmann::json& j, RowTableSource& s) {
  if (j.contains("hugectr")) {
    s.of = j.at("hugectr").get<HugectrSparseTable>();
  } else {
    s.of = j.at("dcp").get<DcpTableSource>();
  }
}

// A row table travels as what it reads; every rank lays out its slots and file itself (lay_out_row_tables),
// because the row transforms it goes through are objects, not data.
inline void to_json(nlohmann::json& j, const RowTable& t) {
  j = {{"name", t.name}, {"file", t.file}, {"source", t.source}};
}
inline void from_json(const nlohmann::json& j, RowTable& t) {
  j.at("name").get_to(t.name);
  j.at("file").get_to(t.file);
  j.at("source").get_to(t.source);
}
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(FileStamp, size, mtime_ns, ctime_ns)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RowTables, source_path, ckpt_id, tables, inputs)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SourceDescription, kind, listing, selection, row_tables, step, dense)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ManifestFile, name, bytes, checksum, piece_bytes)

// The /dense datasets every rank must create; their bytes stay on rank 0, which writes them.
inline void to_json(nlohmann::json& j, const DenseDataset& d) {
  j = {{"name", d.name}, {"dtype", d.dtype}, {"shape", d.shape}};
}
inline void from_json(const nlohmann::json& j, DenseDataset& d) {
  j.at("name").get_to(d.name);
  j.at("dtype").get_to(d.dtype);
  j.at("shape").get_to(d.shape);
}

// A converted table's error travels as its exact sums' digits, so that rank 0's merge is exact too.
inline void to_json(nlohmann::json& j, const ExactSum& sum) {
  const ExactSum::Digits d = sum.digits();
  j = {{"lowest", d.lowest}, {"digits", d.digits}};
}
inline void from_json(const nlohmann::json& j, ExactSum& sum) {
  ExactSum::Digits d;
  j.at("lowest").get_to(d.lowest);
  j.at("digits").get_to(d.digits);
  if (!sum.set_digits(d)) job_messages_detail::undecodable("exact sum", j);
}
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(QuantizationError, rows, elements, abs_sum, squared_sum, max_abs, max_row_rel_l2)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TableQuantization, dtype, dim, source_dtypes, error)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(QuantizationLedger, tables)

// Eviction (plan/eviction_plan.h): the decision columns each rank finds, and the parts rank 0 plans from them.
// The dtype travels as its header spelling, as for TensorInfo.
inline void to_json(nlohmann::json& j, const DecisionColumn& c) {
  j = {{"path", c.path},           {"tensor", c.tensor},          {"offset", c.offset},
       {"rows", c.rows},           {"dtype", dtype_spelling(c.dtype)}, {"row_elements", c.row_elements}};
}
inline void from_json(const nlohmann::json& j, DecisionColumn& c) {
  j.at("path").get_to(c.path);
  j.at("tensor").get_to(c.tensor);
  j.at("offset").get_to(c.offset);
  j.at("rows").get_to(c.rows);
  auto dtype = parse_dtype(j.at("dtype").get<std::string>());
  if (!dtype) job_messages_detail::undecodable("dtype", j);
  c.dtype = *dtype;
  j.at("row_elements").get_to(c.row_elements);
}
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PartId, table, part)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(LocatedColumn, part, slot, column)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PartDecision, step_filter, global_step, older_than, changed_after, embedding,
                                   l2_below)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PlannedPart, part, decision, counter, kept_rows_file)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(GlobalStep, step, source)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ExportClock, tables, step)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PartCount, part, rows, kept)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PartSelection, part, decision, rows, kept, kept_rows_file)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RankColumns, error, columns)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ResumeSavings, files, pieces, ranges, bytes, seconds)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OutputRegion, file, offset, bytes, checksum)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RowRangeResult, table, range, ranges, regions, bytes_in, error)
// A --resume journal entry is stored in the messages' own encoding (CBOR): its tensor lists are binary.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(JournalEntry, result, piece, rows, source_size, source_mtime_ns, source_header,
                                   seconds)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RankCounts, error, counts)

// Resharding (plan/reshard_plan.h): what each rank counted in its files, and the placements rank 0 sends back.
inline void to_json(nlohmann::json& j, const RowLayout& l) {
  j = {{"dtype", l.dtype_spelling}, {"row_shape", l.row_shape}, {"encoding", l.encoding}};
}
inline void from_json(const nlohmann::json& j, RowLayout& l) {
  j.at("dtype").get_to(l.dtype_spelling);
  auto dtype = parse_dtype(l.dtype_spelling);
  if (!dtype) job_messages_detail::undecodable("dtype", j);
  l.dtype = *dtype;
  j.at("row_shape").get_to(l.row_shape);
  j.at("encoding").get_to(l.encoding);
}
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TargetRows, target, rows)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PartTargets, part, ids, targets)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(KeptSlot, part, slot, tensor, file, rows, output)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(KeptDense, tensor, file)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ReshardInput, count, parts, slots, dense)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RankReshardCounts, error, found, kept)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Placement, target, offset, row, rows)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TensorPlacement, tensor, ids, targets)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ReshardShare, count, sparse, dense, table_rows)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RowRangeCount, table, rows, kept, targets)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RankRowRangeCounts, error, ranges)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RowRangePlacement, table, slots)

// The export job's own stages (pipeline/): what rank 0 tells every rank after discovery, and every rank rank 0 at
// the barrier.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Discovery, source, export_dir, staging_dir, clock, delta_base)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RankReport, error, results, seconds, shared_bytes, quantization, resumed, pieces,
                                   piece_bytes, copy_path, copy_why, evicted, judged_by_step)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SharedFile, name, bytes)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(RankTensors, ok, tensors)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MergeInputs, base, deltas, staging_dir, step)

}  // namespace recis_convert
