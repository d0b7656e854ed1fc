#include "recis_convert/formats/dcp_metadata.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <unordered_set>

#include "recis_convert/formats/pickle.h"
#include "recis_convert/formats/strict_json.h"  // read_small_file

namespace recis_convert {
namespace {

using Kind = PickleValue::Kind;

const std::string kMetadataModule = "torch.distributed.checkpoint.metadata.";
const std::string kMetadata = kMetadataModule + "Metadata";
const std::string kTensorStorage = kMetadataModule + "TensorStorageMetadata";
const std::string kBytesStorage = kMetadataModule + "BytesStorageMetadata";
const std::string kChunkStorage = kMetadataModule + "ChunkStorageMetadata";
const std::string kTensorProperties = kMetadataModule + "TensorProperties";
const std::string kMetadataIndex = kMetadataModule + "MetadataIndex";
const std::string kStorageMeta = kMetadataModule + "StorageMeta";
const std::string kMemoryFormat = kMetadataModule + "_MEM_FORMAT_ENCODING";
const std::string kStorageInfo = "torch.distributed.checkpoint.filesystem._StorageInfo";
const std::string kGetLayout = "torch.serialization._get_layout";
const std::string kTorchSize = "torch.Size";
// StorageMeta.checkpoint_id: pathlib._local under Python 3.13, pathlib before
const std::set<std::string> kPosixPaths = {"pathlib._local.PosixPath", "pathlib.PosixPath"};
const std::set<std::string> kDataclasses = {kMetadata,      kTensorStorage, kBytesStorage, kChunkStorage,
                                            kTensorProperties, kMetadataIndex, kStorageMeta,  kStorageInfo};
// torch.<name> as the dtype globals are pickled
const std::map<std::string, DType> kDTypes = {
    {"torch.float32", DType::kF32}, {"torch.float64", DType::kF64}, {"torch.float16", DType::kF16},
    {"torch.bfloat16", DType::kBF16}, {"torch.int64", DType::kI64}, {"torch.int32", DType::kI32},
    {"torch.int16", DType::kI16},   {"torch.int8", DType::kI8},     {"torch.uint8", DType::kU8},
    {"torch.bool", DType::kBool},
};

// torch 2.x's writer's globals, built as plain records: the dataclasses empty (NEWOBJ) and given their fields
// (BUILD); torch.Size, the layout, the memory format and the path by value (REDUCE). Nothing else.
class DcpPickleRules final : public PickleRules {
 public:
  size_t max_values() const override { return kMaxDcpMetadataValues; }
  bool allows_global(const std::string& name) const override {
    return kDataclasses.count(name) || kDTypes.count(name) || kPosixPaths.count(name) || name == kMemoryFormat ||
           name == kGetLayout || name == kTorchSize;
  }

  Result<PickleValuePtr> new_object(PickleArena& arena, const PickleValue& cls, const PickleValue& args) override {
    if (!kDataclasses.count(cls.text) || !args.items.empty()) {
      return pickle_refusal("NEWOBJ of " + cls.text + " is not one of the checkpoint metadata's dataclasses");
    }
    auto v = arena.make(Kind::kObject);
    v->text = cls.text;
    unbuilt_.insert(v);
    return v;
  }

  // A dataclass's fields, once: a dict (TensorProperties: its __getstate__ tuple).
  Status build(PickleValue& target, PickleValuePtr state) override {
    if (!unbuilt_.erase(&target)) return pickle_refusal("BUILD of something other than a new dataclass");
    if (state->kind == Kind::kDict) {
      target.dict = state->dict;
      if (state->string_keys) {
        target.string_keys = std::make_unique<std::unordered_map<std::string, size_t>>(*state->string_keys);
      }
      return Ok{};
    }
    if (target.text == kTensorProperties && state->kind == Kind::kTuple) {
      target.state = state;
      return Ok{};
    }
    return pickle_refusal("BUILD of " + target.text + " with a " + kind_name(state->kind));
  }

  Result<PickleValuePtr> reduce(PickleArena& arena, const PickleValue& callable, const PickleValue& args) override {
    const auto& a = args.items;
    if (callable.text == kTorchSize) {  // torch.Size((d0, d1, ...)): the tuple of ints
      if (a.size() != 1 || a[0]->kind != Kind::kTuple) return pickle_refusal("torch.Size of something not a tuple");
      for (const auto& d : a[0]->items) {
        if (d->kind != Kind::kInt || d->integer < 0) return pickle_refusal("torch.Size with a dimension not a size");
      }
      return a[0];
    }
    if (callable.text == kGetLayout || kPosixPaths.count(callable.text)) {  // their one str argument
      if (a.size() != 1 || a[0]->kind != Kind::kString) return pickle_refusal(callable.text + " of a non-str");
      return a[0];
    }
    if (callable.text == kMemoryFormat) {  // an Enum by value: the int
      if (a.size() != 1 || a[0]->kind != Kind::kInt) return pickle_refusal(callable.text + " of a non-int");
      return a[0];
    }
    return PickleRules::reduce(arena, callable, args);
  }

 private:
  std::unordered_set<PickleValuePtr> unbuilt_;
};

// --- from records to the checked description -----------------------------------------------------------------

class MetadataReader {
 public:
  explicit MetadataReader(std::string path) : path_(std::move(path)) {}

  Result<DcpMetadata> read(const PickleValue& root) {
    if (root.kind != Kind::kObject || root.text != kMetadata) return fail("", "does not hold a DCP Metadata");
    const PickleValue* tensors = field(root, "state_dict_metadata", Kind::kDict);
    const PickleValue* storage = field(root, "storage_data", Kind::kDict);
    if (!tensors || !storage) return fail("", "Metadata has no state_dict_metadata or storage_data dict");
    auto items = storage_items(*storage);
    if (!items) return items.error();
    DcpMetadata out;
    out.path = path_;
    for (const auto& [key, value] : tensors->dict) {
      if (key->kind != Kind::kString) return fail("", "state_dict_metadata has a key that is not a str");
      const std::string& fqn = key->text;
      if (value->kind == Kind::kObject && value->text == kBytesStorage) {
        out.byte_items.push_back(fqn);
        continue;
      }
      auto tensor = read_tensor(fqn, *value, items.value());
      if (!tensor) return tensor.error();
      out.tensors.push_back(std::move(tensor).value());
    }
    return out;
  }

 private:
  using ItemKey = std::pair<std::string, std::vector<uint64_t>>;  // fqn, chunk offsets
  struct Item {
    std::string file;
    uint64_t offset = 0, length = 0;
  };

  Error fail(const std::string& fqn, const std::string& what) const {
    return bad_input(path_, fqn.empty() ? what : "tensor \"" + fqn + "\": " + what);
  }

  static const PickleValue* field(const PickleValue& object, const std::string& name, Kind kind) {
    const PickleValue* v = dict_value(object, name);
    return v && v->kind == kind ? v : nullptr;
  }

  static std::optional<std::vector<uint64_t>> sizes_of(const PickleValue* v) {
    if (!v || v->kind != Kind::kTuple) return std::nullopt;
    std::vector<uint64_t> out;
    for (const auto& d : v->items) {
      if (d->kind != Kind::kInt || d->integer < 0) return std::nullopt;
      out.push_back(static_cast<uint64_t>(d->integer));
    }
    return out;
  }

  // storage_data: MetadataIndex(fqn, offset) -> _StorageInfo(relative_path, offset, length)
  Result<std::map<ItemKey, Item>> storage_items(const PickleValue& storage) const {
    std::map<ItemKey, Item> out;
    for (const auto& [key, value] : storage.dict) {
      if (key->kind != Kind::kObject || key->text != kMetadataIndex || value->kind != Kind::kObject ||
          value->text != kStorageInfo) {
        return fail("", "storage_data maps something other than a MetadataIndex to a _StorageInfo");
      }
      const PickleValue* fqn = field(*key, "fqn", Kind::kString);
      const PickleValue* offset = dict_value(*key, "offset");
      if (!fqn) return fail("", "a MetadataIndex has no fqn");
      if (!offset || offset->kind == Kind::kNone) continue;  // a byte item: never read
      auto offsets = sizes_of(offset);
      const PickleValue* file = field(*value, "relative_path", Kind::kString);
      const PickleValue* at = field(*value, "offset", Kind::kInt);
      const PickleValue* length = field(*value, "length", Kind::kInt);
      if (!offsets || !file || !at || !length || at->integer < 0 || length->integer < 0) {
        return fail(fqn->text, "an item's MetadataIndex or _StorageInfo is malformed");
      }
      // later torch versions describe items stored through a transform (compression): not a plain torch.save
      const PickleValue* transforms = dict_value(*value, "transform_descriptors");
      if (transforms && !(transforms->kind == Kind::kNone ||
                          ((transforms->kind == Kind::kList || transforms->kind == Kind::kTuple) &&
                           transforms->items.empty()))) {
        return fail(fqn->text, "an item is stored through a transform (compressed?): only plain torch.save items "
                               "are read");
      }
      const std::string& name = file->text;
      if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
          name.find('\0') != std::string::npos) {
        return fail(fqn->text, "an item lies in \"" + name + "\", which is not a file of the checkpoint directory");
      }
      Item item{name, static_cast<uint64_t>(at->integer), static_cast<uint64_t>(length->integer)};
      if (!out.emplace(ItemKey{fqn->text, *offsets}, item).second) {
        return fail(fqn->text, "two items are stored for one chunk");
      }
    }
    return out;
  }

  Result<DcpTensor> read_tensor(const std::string& fqn, const PickleValue& md,
                                const std::map<ItemKey, Item>& items) const {
    if (md.kind != Kind::kObject || md.text != kTensorStorage) {
      return fail(fqn, "is neither a TensorStorageMetadata nor a BytesStorageMetadata");
    }
    DcpTensor t;
    t.fqn = fqn;
    auto dtype = dtype_of(fqn, dict_value(md, "properties"));
    if (!dtype) return dtype.error();
    t.dtype = dtype.value();
    auto shape = sizes_of(dict_value(md, "size"));
    const PickleValue* chunks = field(md, "chunks", Kind::kList);
    if (!shape || !chunks) return fail(fqn, "has no size or chunk list");
    t.shape = std::move(*shape);
    for (const auto& chunk : chunks->items) {
      if (chunk->kind != Kind::kObject || chunk->text != kChunkStorage) return fail(fqn, "a chunk is malformed");
      auto offsets = sizes_of(dict_value(*chunk, "offsets"));
      auto sizes = sizes_of(dict_value(*chunk, "sizes"));
      if (!offsets || !sizes || offsets->size() != t.shape.size() || sizes->size() != t.shape.size()) {
        return fail(fqn, "a chunk's offsets or sizes do not match the tensor's " + std::to_string(t.shape.size()) +
                             " dimensions");
      }
      auto item = items.find(ItemKey{fqn, *offsets});
      if (item == items.end()) return fail(fqn, "the chunk at " + shape_text(*offsets) + " has no stored item");
      const Item& stored = item->second;
      DcpChunk c{std::move(*offsets), std::move(*sizes), stored.file, stored.offset, stored.length};
      t.chunks.push_back(std::move(c));
    }
    if (t.chunks.empty()) return fail(fqn, "has no chunks");
    std::sort(t.chunks.begin(), t.chunks.end(),
              [](const DcpChunk& a, const DcpChunk& b) { return a.offsets < b.offsets; });
    auto tiled = check_tiling(t);
    if (!tiled) return tiled.error();
    return t;
  }

  // TensorProperties: torch 2.x's __getstate__ tuple (dtype, layout, requires_grad, memory_format, pin_memory),
  // or a dict of the same fields.
  Result<DType> dtype_of(const std::string& fqn, const PickleValue* properties) const {
    if (!properties || properties->kind != Kind::kObject || properties->text != kTensorProperties) {
      return fail(fqn, "has no TensorProperties");
    }
    const PickleValue* dtype = nullptr;
    const PickleValue* layout = nullptr;
    if (properties->state && properties->state->items.size() >= 2) {
      dtype = properties->state->items[0];
      layout = properties->state->items[1];
    } else {
      dtype = dict_value(*properties, "dtype");
      layout = dict_value(*properties, "layout");
    }
    if (!dtype || dtype->kind != Kind::kGlobal || !kDTypes.count(dtype->text)) {
      return fail(fqn, "its dtype is not one this reader knows" +
                           (dtype && dtype->kind == Kind::kGlobal ? " (" + dtype->text + ")" : std::string()));
    }
    if (layout && !(layout->kind == Kind::kString && layout->text == "torch.strided")) {
      return fail(fqn, "is not a strided (dense) tensor");
    }
    return kDTypes.at(dtype->text);
  }

  // Every chunk inside the tensor; together, every element exactly once. Checked on the grid of the chunks' cuts:
  // each cell is covered by one chunk, whatever the layout (rows, columns, blocks of both, uneven, empty).
  Status check_tiling(const DcpTensor& t) const {
    const size_t dims = t.shape.size();
    std::vector<std::vector<uint64_t>> cuts(dims);
    for (size_t d = 0; d < dims; ++d) cuts[d] = {0, t.shape[d]};
    for (const DcpChunk& c : t.chunks) {
      for (size_t d = 0; d < dims; ++d) {
        if (c.offsets[d] > t.shape[d] || c.sizes[d] > t.shape[d] - c.offsets[d]) {
          return fail(t.fqn, "the chunk at " + shape_text(c.offsets) + " of size " + shape_text(c.sizes) +
                                 " lies outside its shape " + shape_text(t.shape));
        }
        cuts[d].push_back(c.offsets[d]);
        cuts[d].push_back(c.offsets[d] + c.sizes[d]);
      }
    }
    uint64_t cells = 1;
    for (auto& axis : cuts) {
      std::sort(axis.begin(), axis.end());
      axis.erase(std::unique(axis.begin(), axis.end()), axis.end());
      const uint64_t n = axis.size() - 1;  // 0 when the shape is 0 there: nothing to cover
      if (n != 0 && cells > kMaxDcpChunkGridCells / n) {
        return fail(t.fqn, "its chunks cut it into more than " + std::to_string(kMaxDcpChunkGridCells) + " cells");
      }
      cells *= n;
    }
    std::vector<bool> covered(cells, false);
    for (const DcpChunk& c : t.chunks) {
      if (c.numel() == 0) continue;
      std::vector<uint64_t> lo(dims), hi(dims), at(dims);
      for (size_t d = 0; d < dims; ++d) {
        lo[d] = static_cast<uint64_t>(std::lower_bound(cuts[d].begin(), cuts[d].end(), c.offsets[d]) - cuts[d].begin());
        hi[d] = static_cast<uint64_t>(
            std::lower_bound(cuts[d].begin(), cuts[d].end(), c.offsets[d] + c.sizes[d]) - cuts[d].begin());
        at[d] = lo[d];
      }
      while (true) {  // every cell of the chunk's box, row-major
        uint64_t cell = 0;
        for (size_t d = 0; d < dims; ++d) cell = cell * (cuts[d].size() - 1) + at[d];
        if (covered[cell]) return fail(t.fqn, "the chunk at " + shape_text(c.offsets) + " overlaps another chunk");
        covered[cell] = true;
        size_t d = dims;
        while (d > 0 && ++at[d - 1] == hi[d - 1]) {
          at[d - 1] = lo[d - 1];
          --d;
        }
        if (d == 0) break;
      }
    }
    for (uint64_t cell = 0; cell < cells; ++cell) {
      if (covered[cell]) continue;
      std::vector<uint64_t> first(dims);  // the cell's first element
      for (size_t d = dims, rest = cell; d-- > 0;) {
        first[d] = cuts[d][rest % (cuts[d].size() - 1)];
        rest /= cuts[d].size() - 1;
      }
      return fail(t.fqn, "its chunks do not cover it: no chunk holds the element at " + shape_text(first));
    }
    return Ok{};
  }

  std::string path_;
};

uint64_t product(const std::vector<uint64_t>& sizes) {
  uint64_t n = 1;
  for (uint64_t d : sizes) n = __builtin_mul_overflow(n, d, &n) ? UINT64_MAX : n;
  return n;
}

}  // namespace

uint64_t DcpChunk::numel() const { return product(sizes); }
uint64_t DcpTensor::numel() const { return product(shape); }

Result<DcpMetadata> parse_dcp_metadata(const std::string& bytes, const std::string& path) {
  DcpPickleRules rules;
  Unpickler unpickler(bytes, path, kDcpMetadataFile, "a checkpoint's metadata", rules);
  auto root = unpickler.run();
  if (!root) return root.error();
  return MetadataReader(path).read(*root.value());
}

Result<DcpMetadata> read_dcp_metadata(const std::string& dir) {
  const std::string path = dir + "/" + kDcpMetadataFile;
  auto bytes = read_small_file(path, kMaxDcpMetadataBytes);
  if (!bytes) return bytes.error();
  return parse_dcp_metadata(bytes.value(), path);
}

}  // namespace recis_convert
