// The `.metadata` of a PyTorch Distributed Checkpoint (torch.distributed.checkpoint, as torch 2.6 writes it;
// docs/formats.md, "PyTorch Distributed Checkpoints"), read into a checked DcpMetadata.
//
// It is a pickle of torch's dataclasses. torch itself reads it with a plain pickle.load; this reader runs
// formats/pickle.h under an allow-list of exactly the globals torch 2.x's writer puts there (the dataclasses of
// torch.distributed.checkpoint.metadata, filesystem._StorageInfo, torch.Size, torch dtypes, the layout and
// memory-format encoders, pathlib's PosixPath), builds them as plain records and calls nothing: any other global is
// an error naming it. Checked once here: every tensor's chunks lie inside it, do not overlap and cover it, and each
// has its stored item, a plain file name with a byte range.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/formats/safetensors.h"

namespace recis_convert {

inline constexpr const char* kDcpMetadataFile = ".metadata";
// The largest .metadata read (about 250 bytes a chunk: 4M chunks).
inline constexpr uint64_t kMaxDcpMetadataBytes = 1ull << 30;
// The pickle values .metadata may build: about 39 a row-wise chunk (its offsets and sizes, its item's index and
// storage record), so some 200,000 chunks (1,000 tables over 200 ranks), at ~120 bytes a value on rank 0 while it
// is read (torch's own pickle.load of the same file takes about as much).
inline constexpr size_t kMaxDcpMetadataValues = 8'000'000;
// A tensor's chunks are checked for overlap on the grid of their cuts: at most this many cells (a bit each).
inline constexpr uint64_t kMaxDcpChunkGridCells = 1ull << 26;

// One stored piece of a tensor: its place in the tensor, and the item (a torch.save archive) that holds it.
struct DcpChunk {
  std::vector<uint64_t> offsets;  // of its first element in the whole tensor, per dimension
  std::vector<uint64_t> sizes;    // its extent per dimension (0 in one: an empty chunk)
  std::string file;               // the data file, relative to the checkpoint directory
  uint64_t item_offset = 0;       // the item's bytes in that file
  uint64_t item_length = 0;

  uint64_t numel() const;
};

struct DcpTensor {
  std::string fqn;
  DType dtype = DType::kF32;
  std::vector<uint64_t> shape;
  std::vector<DcpChunk> chunks;  // in row-major order of their offsets (torch lists them by rank)

  uint64_t numel() const;
};

struct DcpMetadata {
  std::string path;
  std::vector<DcpTensor> tensors;       // in the file's order
  std::vector<std::string> byte_items;  // the fqns of non-tensor values (pickled objects, never read)
};

// Reads and checks `<dir>/.metadata`. kBadInput naming the file (and tensor) on anything else.
Result<DcpMetadata> read_dcp_metadata(const std::string& dir);
// The same from the file's bytes; `path` names it in errors.
Result<DcpMetadata> parse_dcp_metadata(const std::string& bytes, const std::string& path);

}  // namespace recis_convert
