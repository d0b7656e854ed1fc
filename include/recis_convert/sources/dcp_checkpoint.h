// --source dcp: a TorchEasyRec or torchrec checkpoint in PyTorch's Distributed Checkpoint format, found and described
// (formats/dcp_metadata.h reads the .metadata).
//
// Where it is (TorchEasyRec's checkpoint_util.py): --ckpt-dir names a DCP directory (.metadata and *.distcp), a
// TorchEasyRec checkpoint `model.ckpt-<step>/` (its `model/` is the DCP of the model), or a model directory holding
// several `model.ckpt-<step>/`, of which the largest step (by integer, as TorchEasyRec's latest_checkpoint sorts) is
// taken. A model directory with no model.ckpt-* but a `model/` is a checkpoint of step 0, as TorchEasyRec says.
//
// What is in it (torchrec's state_dict naming): every tensor whose name ends `.embedding_bags.<t>.weight`
// (EmbeddingBagCollection) or `.embeddings.<t>.weight` (EmbeddingCollection) is sparse table <t>, which must be 2-D
// float32, float16 or bfloat16; a managed-collision module's buffers (`..._managed_collision_modules.<t>._mch_*`) go
// with table <t>; every other tensor is a dense weight.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/formats/dcp_metadata.h"

namespace recis_convert {

inline constexpr const char* kTorchEasyRecCheckpointPrefix = "model.ckpt-";
inline constexpr const char* kTorchEasyRecModelDir = "model";

struct DcpLocation {
  std::string dcp_dir;            // the directory holding .metadata
  std::string checkpoint_dir;     // model.ckpt-<step>, or dcp_dir when it is not in one
  std::optional<int64_t> step;    // from the checkpoint's name (TorchEasyRec: the global step)
};

// kBadInput naming the path when none of the three shapes is found, or a DCP directory has no .metadata (an
// unfinished save: torch writes it last).
Result<DcpLocation> locate_dcp_checkpoint(const std::string& path);

struct DcpTable {
  std::string name;                        // <t>
  DcpTensor weight;                        // its [rows, dim] tensor
  std::vector<DcpTensor> managed_collision;  // its _mch_* buffers, if any
};

struct DcpCheckpoint {
  DcpLocation location;
  std::vector<DcpTable> tables;   // by name
  std::vector<DcpTensor> dense;   // every other tensor, in the file's order
};

// How a table's chunks cut it, as torchrec's sharding types say: "table-wise" (one chunk), "row-wise" (chunks of
// whole rows), "column-wise" (chunks of whole columns), "grid" (blocks of both); with the chunk count.
std::string dcp_table_layout(const DcpTensor& table);

// The tables' naming rules applied to the checked metadata. kBadInput naming the tensor: a table that is not a
// 2-D float tensor, two tensors naming the same table, _mch_* buffers of no table.
Result<DcpCheckpoint> describe_dcp_checkpoint(const DcpLocation& location, DcpMetadata metadata);

}  // namespace recis_convert
