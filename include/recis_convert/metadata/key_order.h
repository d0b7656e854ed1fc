// The tensors of an export's files in key order: the order of RecIS's metadata files (nlohmann's std::map objects)
// and of the block catalog. Each file's own list is put in order (usually it is already: a header's keys come
// sorted), then the files' lists are merged through a heap of their heads. With a million blocks, sorting all
// names at once cost more per block the more blocks there were (cache misses on every comparison); the merge
// reads each name once, and its comparisons are between the files' heads, which stay in cache.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "recis_convert/sinks/file_export.h"
#include "recis_convert/sources/block_catalog.h"

namespace recis_convert {

// Which tensors of each file a walk visits.
enum class TensorsOf { kKept, kKeptAndDropped };

// Calls visit(tensor, file index, kept) for the tensors of `files` in key order; equal names in file order.
void for_each_in_key_order(const std::vector<FileResult>& files, TensorsOf which,
                           const std::function<void(const TensorInfo&, size_t, bool)>& visit);

struct KeptTensor {
  const TensorInfo* tensor;  // its name is the key
  const FileResult* file;
  uint64_t file_number;      // the number of `file` among the written files (index's "file_index"), in file order
  std::string_view logical;  // tensorkey.json's name from the catalog; empty: not there (a dense key)
};

struct KeyOrder {
  std::vector<KeptTensor> kept;
  // The first block that the catalog places in a data file and that no file has, kept or dropped, if any.
  std::optional<size_t> missing_block;
};

// One walk over the tensors of every file (written or not: --format hdf5 writes no data file), kept and dropped,
// alongside the catalog: the kept ones in key order, each with its tensorkey.json name, and the first indexed block
// no file had. `files` sorted by name. The pointers are into `files`' elements: moving the vector keeps them
// valid, changing it does not. A name in two files (impossible: the index places each block in one file) keeps
// the later file's, as the last assignment to a std::map key would.
KeyOrder order_by_key(const std::vector<FileResult>& files, const BlockCatalog& blocks);
// Its kept tensors only.
std::vector<KeptTensor> kept_in_key_order(const std::vector<FileResult>& files, const BlockCatalog& blocks);

}  // namespace recis_convert
