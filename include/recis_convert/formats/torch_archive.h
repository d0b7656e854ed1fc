// A weights-only reader of torch.save files (model.pt): the zip archive (<archive>/data.pkl, <archive>/data/<key>)
// and a small, strict subset of pickle, interpreted without executing anything.
//
// Why not libtorch: torch::pickle_load (libtorch 1.13) cannot read an OrderedDict state dict (opcode SETITEM and
// OrderedDict are unsupported), and Python's torch.load runs arbitrary pickle code. This reader accepts only what a
// state dict needs: dict/OrderedDict, tuples, lists, str, int, float, bool, None, memo operations, BINPERSID
// storages, torch._utils._rebuild_tensor_v2 / _rebuild_parameter and the storage-type globals (and, in a
// TorchScript archive, the module objects). Any other global or opcode is an error naming the file, the global or
// opcode, and its offset in data.pkl. Records torch itself does not need to load tensors (`.data/version`,
// `.data/serialization_id`, `.format_version`, `.storage_alignment`, code/) are not read.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/formats/safetensors.h"
#include "recis_convert/formats/zip_reader.h"

namespace recis_convert {

// The largest storage (or, copying a TorchScript archive, record) read whole.
inline constexpr uint64_t kMaxTorchStorageBytes = 16ull << 30;

struct TorchStorage {
  std::string key;       // "0", "1"...: the archive entry <archive>/data/<key>
  DType dtype = DType::kU8;
  uint64_t numel = 0;
  std::string location;  // as saved ("cpu", "cuda:0"...); tensors are always read to host memory
  ZipEntry entry;
};

struct TorchTensor {
  std::string name;
  DType dtype = DType::kU8;
  std::vector<uint64_t> shape;
  std::vector<uint64_t> strides;  // in elements
  uint64_t storage_offset = 0;    // in elements
  std::string storage_key;
  bool is_parameter = false;      // saved as nn.Parameter
  bool requires_grad = false;

  uint64_t numel() const;
};

// A checked state dict: every tensor's view fits inside its storage, every storage entry exists with the size its
// element count needs. Tensors are in the saved (insertion) order.
struct TorchStateDict {
  std::string path;
  std::string archive_folder;  // the records' folder with its '/': "archive/" for torch.save, the module's name for
                               // TorchScript
  std::vector<TorchTensor> tensors;
  std::map<std::string, TorchStorage> storages;
  ZipIndex zip;
};

// What to do with a top-level entry that is not a tensor: refuse it (a state dict, model.pt), or leave it out
// (extra.pt, which also holds the dense optimizer's and the dataset's state).
enum class NonTensorEntries { kRefuse, kSkip };

// Reads model.pt-like files: the pickled object must be a dict/OrderedDict from str to tensors (with kSkip, its
// other entries are read, checked by the same pickle rules, and left out).
Result<TorchStateDict> read_torch_state_dict(const std::string& path,
                                             NonTensorEntries others = NonTensorEntries::kRefuse);

// The tensors a TorchScript archive (torch.jit.save) holds, named by attribute path as state_dict() names them
// ("mlp.0.weight"): its data.pkl is read as a state dict is, except that module objects (classes under
// `__torch__`, created empty and given their attributes) are allowed and walked. No code is read or run, so this
// works whatever torch version scripted the module.
Result<TorchStateDict> read_torchscript_tensors(const std::string& path);

// A Distributed Checkpoint's item (formats/dcp_metadata.h): the torch.save archive of one tensor that is `size`
// bytes of the open file `fd` from `base` on, checked as read_torch_state_dict checks a file. Its one tensor is
// unnamed; its storage's entry.data_offset is where its elements lie in the file.
Result<TorchStateDict> read_torch_tensor_item(int fd, uint64_t base, uint64_t size, const std::string& path);

// The tensor's elements, contiguous and row-major (views and strides resolved), little-endian.
Result<std::string> read_tensor_data(const TorchStateDict& state, const TorchTensor& tensor);

}  // namespace recis_convert
