#include "recis_convert/dense/weight_fill.h"

#include <algorithm>
#include <map>
#include <set>

#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/torch_archive.h"
#include "recis_convert/formats/zip_writer.h"

namespace recis_convert {
namespace {

bool owns_its_storage(const TorchTensor& t, const TorchStorage& storage) {
  uint64_t expected = 1;
  for (size_t d = t.shape.size(); d-- > 0;) {
    if (t.shape[d] != 1 && t.strides[d] != expected) return false;
    expected *= t.shape[d];
  }
  return t.storage_offset == 0 && t.numel() == storage.numel;
}

}  // namespace

Result<WeightFill> fill_dense_weights(const std::string& arch, const DenseWeights& weights,
                                      const std::string& dense_name, const std::string& out_path) {
  auto module = read_torchscript_tensors(arch);
  if (!module) return module.error();
  std::map<std::string, size_t> saved;  // name -> index of the weight
  for (size_t i = 0; i < weights.weights().size(); ++i) saved[weights.weights()[i].name] = i;
  const std::string prefix = dense_name.empty() ? "" : dense_name + ".";

  // storage key in the module -> the weight whose bytes replace it
  std::map<std::string, size_t> replacement;
  std::set<std::string> used;
  std::vector<std::string> problems;
  for (const TorchTensor& t : module.value().tensors) {
    const std::string key = prefix + t.name;
    auto it = saved.find(key);
    if (it == saved.end()) {
      problems.push_back("missing " + key);
      continue;
    }
    const DenseWeight& from = weights.weights()[it->second];
    if (from.shape != t.shape || from.dtype != t.dtype) {
      problems.push_back(key + " is " + shape_text(from.shape) + " torch." + dtype_torch_name(from.dtype) + " in " +
                         weights.what() + " but " + shape_text(t.shape) + " torch." + dtype_torch_name(t.dtype) +
                         " in the module");
      continue;
    }
    const TorchStorage& storage = module.value().storages.at(t.storage_key);
    if (!owns_its_storage(t, storage) || !replacement.emplace(t.storage_key, it->second).second) {
      problems.push_back(t.name + " does not own its storage in the module (a view, or tied to another "
                         "tensor), and only whole storages are replaced");
      continue;
    }
    used.insert(key);
  }
  if (!problems.empty()) {
    std::string text;
    for (const auto& p : problems) text += (text.empty() ? "" : "; ") + p;
    return bad_input(weights.path(), "does not fit the dense model " + arch + ": " + text);
  }

  WeightFill fill;
  fill.tensors = module.value().tensors.size();
  for (const DenseWeight& w : weights.weights()) {
    if (w.name.compare(0, prefix.size(), prefix) == 0 && !used.count(w.name)) {
      fill.warnings.push_back(weights.what() + " key " + w.name + " is not used by the dense model");
    }
  }

  // Every record in the archive's own order; the replaced storages with model.pt's bytes.
  std::vector<const ZipEntry*> records;
  for (const auto& [name, entry] : module.value().zip.entries) records.push_back(&entry);
  std::sort(records.begin(), records.end(),
            [](const ZipEntry* a, const ZipEntry* b) { return a->data_offset < b->data_offset; });
  std::map<std::string, std::string> storage_of_record;  // record name -> storage key
  for (const auto& [key, storage] : module.value().storages) storage_of_record[storage.entry.name] = key;

  auto opened = open_input_file(arch);
  if (!opened) return opened.error();
  auto writer = ZipWriter::create(out_path);
  if (!writer) return writer.error();
  for (const ZipEntry* record : records) {
    auto storage = storage_of_record.find(record->name);
    Status added = Ok{};
    if (storage != storage_of_record.end() && replacement.count(storage->second)) {
      auto bytes = weights.bytes(replacement.at(storage->second));
      if (!bytes) return bytes.error();
      added = writer.value().add(record->name, bytes.value());
    } else {
      auto bytes = read_zip_raw(opened.value().get(), module.value().zip, *record, kMaxTorchStorageBytes);
      if (!bytes) return bytes.error();
      added = writer.value().add_raw(record->name, record->method, record->crc32, record->size, bytes.value());
    }
    if (!added) return added.error();
  }
  auto finished = writer.value().finish();
  if (!finished) return finished.error();
  return fill;
}

}  // namespace recis_convert
