// Where one kept tensor of the source lies, as the rank that reads it summarizes it for the others: enough for
// any rank to plan where its rows go (plan/hdf5_layout.h) and for the owner to read any range of them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace recis_convert {

struct SourceTensor {
  std::string key;           // "child.slot/part_r_R" or "name^ "
  bool sparse = false;
  std::string child, slot, slice;  // sparse only
  int part_rank = 0;         // r of "/part_r_R"
  std::string dtype;         // safetensors spelling, as the source holds the rows
  std::vector<uint64_t> shape;
  std::string file;          // data file name in the checkpoint directory, or an absolute path
  uint64_t offset = 0;       // absolute offset of the tensor's bytes in the file
  int owner = 0;             // the rank that reads this file
  // With an eviction rule for its part (transforms/row_selection.h): the rows that stay, which its owner picks as it
  // reads; -1: every row (shape[0]).
  int64_t kept_rows = -1;

  uint64_t exported_rows() const { return kept_rows >= 0 ? static_cast<uint64_t>(kept_rows) : (shape.empty() ? 0 : shape[0]); }
};

}  // namespace recis_convert
