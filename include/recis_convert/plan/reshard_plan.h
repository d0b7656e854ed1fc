// --reshard M: where every row of every table goes when the export has M parts per table, whatever the source's
// part count. Part m holds the ids with id % 65536 in gen_slice(m, M) (plan/slices.h), RecIS's own split, and
// output file m ("model-%06d-of-%06d.safetensors") holds part m of every table, so serving shard m loads one file.
// Dense tensors ("name^ ") go into file 0.
//
// Rank 0 plans from what every rank counted in its own files (pipeline/reshard_stage.h): per source part, how many
// of its kept rows go to each target part. Within a target part, rows keep a fixed order: source parts in slice
// order, then their row order. So the plan fixes, before any row moves, the byte offset in its output file of the
// first row each source tensor sends to each target, and every rank pwrites there. Pure: unit-tested without MPI,
// the same plan whatever order the counts arrive in.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/formats/safetensors.h"
#include "recis_convert/plan/eviction_plan.h"
#include "recis_convert/sources/block_catalog.h"
#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

inline constexpr uint32_t kMaxReshardParts = 65536;  // one id residue per part at most

// "model-000003-of-000007.safetensors"
std::string reshard_file_name(uint32_t index, uint32_t count);

// The kept rows of a source part that go to one target part.
struct TargetRows {
  uint32_t target = 0;
  uint64_t rows = 0;
};

// A source part's id column, counted: its rows, and where its kept rows go (targets ascending, no zero entries).
struct PartTargets {
  PartId part;
  DecisionColumn ids;  // the part's id tensor (int64 [N]): the writers of its other slots route rows by it
  std::vector<TargetRows> targets;
};

// A sparse tensor the export keeps, as the row transforms export it.
struct KeptSlot {
  PartId part;
  std::string slot;
  std::string tensor;  // the source key, e.g. "item_id.embedding/part_0_3"
  std::string file;    // the source data file's path, for messages
  uint64_t rows = 0;   // the source rows
  RowLayout output;    // one row after the row transforms
};

// A dense tensor the export keeps: copied as it is into file 0.
struct KeptDense {
  TensorInfo tensor;  // as in its source file
  std::string file;   // the source data file's path, for messages
};

struct ReshardInput {
  uint32_t count = 1;  // M
  std::vector<PartTargets> parts;
  std::vector<KeptSlot> slots;
  std::vector<KeptDense> dense;
};

// Where one source tensor's rows for one target start: the absolute byte offset in the target's file, and the
// row's index within the target part (model.h5 places rows by index); and how many rows go there.
struct Placement {
  uint32_t target = 0;
  uint64_t offset = 0;
  uint64_t row = 0;
  uint64_t rows = 0;
};

// What a writer of one source tensor needs.
struct TensorPlacement {
  std::string tensor;  // the source key
  DecisionColumn ids;  // its part's id column
  std::vector<Placement> targets;  // in target order; only the targets that get rows
};

struct ReshardFile {
  std::string name;
  std::vector<TensorInfo> tensors;  // sorted by name, back to back in the data area
  std::string preamble;             // u64 length + JSON header + padding
  uint64_t bytes() const { return preamble.size() + (tensors.empty() ? 0 : tensors.back().end); }
};

struct ReshardLayout {
  uint32_t count = 1;
  std::vector<ReshardFile> files;                 // file m holds part m of every table
  std::map<std::string, TensorPlacement> sparse;  // by source key
  std::map<std::string, uint64_t> dense;          // source key -> absolute offset in file 0
  std::map<std::string, std::string> logical;     // output key -> tensorkey.json name ("t@slot^00000@21846@65536")
  std::map<std::string, std::vector<uint64_t>> rows;  // table -> its rows in each target part
};

// Checks that the counts and the slots agree (every part of a table has the same slots, with one output layout;
// every slot has its id's rows; the targets add up to the part's kept rows), else kBadInput naming the tensor or
// the part, and lays out the M files. `kept_rows`: per part with an eviction decision, the rows that stay (a part
// without one keeps all). `ckpt_dir` names the checkpoint in messages.
Result<ReshardLayout> plan_reshard(const ReshardInput& input, const std::map<PartId, uint64_t>& kept_rows,
                                   const std::string& ckpt_dir);

// The export's files and blocks as the metadata stage reads them (index, tensorkey.json and the torch_rank json
// come from these): the M files, with part m of every table in file m, and the dense tensors in file 0.
BlockCatalog reshard_catalog(const ReshardLayout& layout);

}  // namespace recis_convert
