// A rank's FileResults, encoded (common/byte_codec.h) as each file is done, for the trip to rank 0: a tensor is
// its position in the rank's block catalog (not its name), dtype, shape and offsets, about 40 bytes, where a
// TensorInfo takes about 190. Rank 0 unpacks them at the barrier, naming each tensor from its own catalog.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "recis_convert/sinks/file_export.h"
#include "recis_convert/sources/block_catalog.h"

namespace recis_convert {

class PackedFileResults {
 public:
  // `blocks`: the catalog the packing rank holds (its share); a tensor it does not list travels by name.
  void add(const FileResult& result, const BlockCatalog& blocks);
  size_t size() const { return count_; }

  // Every result, in the order added. `name_of(i)` is the key of block i of the packing rank's catalog (nullopt
  // if there is none). nullopt if the bytes are not a packing of size() results.
  using NameOf = std::function<std::optional<std::string_view>(uint32_t)>;
  std::optional<std::vector<FileResult>> unpack(const NameOf& name_of) const;

  // The packing as it travels to rank 0 (messages.h, gather_encoded_to_root): the count, then the pieces in one.
  std::string encode() const;
  static std::optional<PackedFileResults> decode(std::string_view bytes);

 private:
  std::vector<std::string> pieces_;  // one per add(): no reallocation of everything packed so far
  size_t count_ = 0;
};

// One file's tensor list with names, for a FileResult travelling on its own.
std::string pack_tensors(const std::vector<TensorInfo>& tensors);
bool unpack_tensors(std::string_view bytes, std::vector<TensorInfo>& tensors);

}  // namespace recis_convert
