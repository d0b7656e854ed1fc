// Every value of the job's own types that travels between ranks, with its one encoding (messages.h carries them).
// In one place so that a newcomer sees what the ranks tell each other, and a new field is added once.
#pragma once

#include <nlohmann/json.hpp>

#include "recis_convert/commands/verify.h"
#include "recis_convert/formats/hugectr_sparse.h"
#include "recis_convert/formats/safetensors.h"
#include "recis_convert/mpi/messages.h"
#include "recis_convert/sinks/file_export.h"
#include "recis_convert/sinks/hdf5_export.h"
#include "recis_convert/sinks/hdf5_layout.h"
#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/sources/hugectr_export.h"
#include "recis_convert/sources/source.h"

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

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DataFile, name, size)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(CheckpointListing, source, ckpt_dir, ckpt_id, files, tensorkey, block_file)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(FileResult, name, source_bytes, written, output_bytes, checksum, kept, dropped)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SourceTensor, key, sparse, child, slot, slice, part_rank, dtype, shape, file, offset,
                                   owner)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(HugectrSparseTable, path, format, rows, vec_size, has_slot_id, key_bytes,
                                   record_bytes)

// A HugeCTR table travels as what it reads; every rank lays out its slots and file itself
// (lay_out_hugectr_tables), because the row transforms it goes through are objects, not data.
inline void to_json(nlohmann::json& j, const HugectrTableExport& t) {
  j = {{"name", t.name}, {"file", t.file}, {"source", t.source}};
}
inline void from_json(const nlohmann::json& j, HugectrTableExport& t) {
  j.at("name").get_to(t.name);
  j.at("file").get_to(t.file);
  j.at("source").get_to(t.source);
}
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(HugectrModel, graph_path, tables)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SourceDescription, listing, selection, hugectr)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ManifestFile, name, bytes, checksum)

// The /dense datasets every rank must create; their bytes stay on rank 0, which writes them.
inline void to_json(nlohmann::json& j, const DenseDataset& d) {
  j = {{"name", d.name}, {"dtype", d.dtype}, {"shape", d.shape}};
}
inline void from_json(const nlohmann::json& j, DenseDataset& d) {
  j.at("name").get_to(d.name);
  j.at("dtype").get_to(d.dtype);
  j.at("shape").get_to(d.shape);
}

}  // namespace recis_convert
