#include "recis_convert/sources/dcp_checkpoint.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "recis_convert/common/file_io.h"
#include "recis_convert/sources/global_step.h"

namespace recis_convert {
namespace {

// The components of a dotted name, last first.
std::vector<std::string> last_components(const std::string& fqn, size_t count) {
  std::vector<std::string> out;
  size_t end = fqn.size();
  while (out.size() < count) {
    const size_t dot = fqn.rfind('.', end == 0 ? 0 : end - 1);
    if (end == 0 || dot == std::string::npos) {
      out.push_back(fqn.substr(0, end));
      break;
    }
    out.push_back(fqn.substr(dot + 1, end - dot - 1));
    end = dot;
  }
  return out;
}

// torchrec's names: `...embedding_bags.<t>.weight` (EmbeddingBagCollection), `...embeddings.<t>.weight`
// (EmbeddingCollection): <t>, or nullopt.
std::optional<std::string> table_named_by(const std::string& fqn) {
  const auto c = last_components(fqn, 3);
  if (c.size() < 3 || c[0] != "weight" || c[1].empty() || (c[2] != "embedding_bags" && c[2] != "embeddings")) {
    return std::nullopt;
  }
  return c[1];
}

// A managed-collision module's buffer, `..._managed_collision_modules.<t>._mch_<what>`: <t>, or nullopt.
std::optional<std::string> managed_collision_table_of(const std::string& fqn) {
  const auto c = last_components(fqn, 3);
  if (c.size() < 3 || c[0].compare(0, 5, "_mch_") != 0 || c[1].empty() || c[2] != "_managed_collision_modules") {
    return std::nullopt;
  }
  return c[1];
}

// A directory that must hold a finished DCP.
Result<DcpLocation> dcp_in(const std::string& dcp_dir, const std::string& checkpoint_dir, std::optional<int64_t> step) {
  if (!is_regular_file(dcp_dir + "/" + kDcpMetadataFile)) {
    return bad_input(dcp_dir + "/" + kDcpMetadataFile, "missing: not a finished Distributed Checkpoint (torch writes it last)");
  }
  return DcpLocation{dcp_dir, checkpoint_dir, step};
}

}  // namespace

Result<DcpLocation> locate_dcp_checkpoint(const std::string& path) {
  if (!is_directory(path)) return bad_input(path, "not a directory");
  const SplitPath where = split_path(path);
  if (is_regular_file(path + "/" + kDcpMetadataFile)) {  // a DCP directory (inside a model.ckpt-<step>/ or not)
    std::string dir = path;  // as given, without trailing slashes
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    const auto step = step_in_name(split_path(where.parent).base, kTorchEasyRecCheckpointPrefix);
    return DcpLocation{dir, step ? where.parent : dir, step};
  }
  if (auto step = step_in_name(where.base, kTorchEasyRecCheckpointPrefix)) {
    return dcp_in(path + "/" + kTorchEasyRecModelDir, path, step);
  }
  // a model directory: the largest model.ckpt-<step>
  DIR* d = ::opendir(path.c_str());
  if (!d) return bad_input(path, std::string("cannot list: ") + std::strerror(errno));
  std::optional<std::pair<int64_t, std::string>> latest;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    auto step = step_in_name(name, kTorchEasyRecCheckpointPrefix);
    if (step && is_directory(path + "/" + name) && (!latest || *step > latest->first)) latest.emplace(*step, name);
  }
  ::closedir(d);
  if (latest) return dcp_in(path + "/" + latest->second + "/" + kTorchEasyRecModelDir, path + "/" + latest->second,
                            latest->first);
  if (is_directory(path + "/" + kTorchEasyRecModelDir)) return dcp_in(path + "/" + kTorchEasyRecModelDir, path, 0);
  return bad_input(path, "holds no .metadata, no model.ckpt-<step>/ and no model/: not a Distributed Checkpoint or a "
                         "TorchEasyRec model directory");
}

std::string dcp_table_layout(const DcpTensor& table) {
  bool whole_rows = true, whole_columns = true;
  size_t stored = 0;
  for (const DcpChunk& c : table.chunks) {
    if (c.numel() == 0) continue;
    ++stored;
    whole_rows = whole_rows && c.sizes[1] == table.shape[1];
    whole_columns = whole_columns && c.sizes[0] == table.shape[0];
  }
  const std::string count = " (" + std::to_string(table.chunks.size()) + " chunks)";
  if (stored <= 1) return "table-wise";
  if (whole_rows) return "row-wise" + count;
  if (whole_columns) return "column-wise" + count;
  return "grid" + count;
}

Result<DcpCheckpoint> describe_dcp_checkpoint(const DcpLocation& location, DcpMetadata metadata) {
  DcpCheckpoint out;
  out.location = location;
  std::map<std::string, DcpTable> tables;
  std::map<std::string, std::vector<DcpTensor>> buffers;  // table -> its _mch_* buffers
  for (DcpTensor& t : metadata.tensors) {
    if (auto table = table_named_by(t.fqn)) {
      const bool floating = t.dtype == DType::kF32 || t.dtype == DType::kF16 || t.dtype == DType::kBF16;
      if (t.shape.size() != 2 || !floating) {
        return bad_input(metadata.path, "tensor \"" + t.fqn + "\" is named as embedding table \"" + *table +
                                            "\" but is a " + dtype_torch_name(t.dtype) + " " + shape_text(t.shape) +
                                            " tensor, not a 2-D float32, float16 or bfloat16 one");
      }
      const std::string fqn = t.fqn;
      if (!tables.emplace(*table, DcpTable{*table, std::move(t), {}}).second) {
        return bad_input(metadata.path, "tensor \"" + fqn + "\" names table \"" + *table + "\", which another tensor names too");
      }
    } else if (auto owner = managed_collision_table_of(t.fqn)) {
      buffers[*owner].push_back(std::move(t));
    } else {
      out.dense.push_back(std::move(t));
    }
  }
  for (auto& [table, held] : buffers) {
    auto found = tables.find(table);
    if (found == tables.end()) {
      return bad_input(metadata.path, "tensor \"" + held.front().fqn + "\" is a managed-collision buffer of table \"" +
                                          table + "\", which the checkpoint does not hold");
    }
    found->second.managed_collision = std::move(held);
  }
  for (auto& [name, table] : tables) out.tables.push_back(std::move(table));
  return out;
}

}  // namespace recis_convert
