#include "recis_convert/formats/torch_archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/pickle.h"

namespace recis_convert {
namespace {

// The archive format versions torch reads (caffe2/serialize/versions.h, the same in 1.13 and 2.6): torch.save
// writes 3, torch.jit.save up to 10. torch refuses others, and an archive without a version record, so do we.
constexpr uint64_t kMinTorchFormatVersion = 1;
constexpr uint64_t kMaxTorchFormatVersion = 10;

// What a pickle may hold: a state dict (torch.save), or also the module objects of a TorchScript archive.
enum class PickleDialect { kStateDict, kScriptModule };

// The only globals a weights-only load may name. Nothing is ever called: REDUCE of these builds values.
const std::map<std::string, DType> kStorageTypes = {
    {"torch.FloatStorage", DType::kF32}, {"torch.DoubleStorage", DType::kF64}, {"torch.HalfStorage", DType::kF16},
    {"torch.BFloat16Storage", DType::kBF16}, {"torch.LongStorage", DType::kI64}, {"torch.IntStorage", DType::kI32},
    {"torch.ShortStorage", DType::kI16}, {"torch.CharStorage", DType::kI8}, {"torch.ByteStorage", DType::kU8},
    {"torch.BoolStorage", DType::kBool},
};
const char* kOrderedDict = "collections.OrderedDict";
const char* kRebuildTensor = "torch._utils._rebuild_tensor_v2";
const char* kRebuildParameter = "torch._utils._rebuild_parameter";
const char* kStorageRecord = "storage";  // what a persistent id builds

// A TorchScript module's data.pkl also names the classes of its (sub)modules, all under `__torch__`: they are
// only ever instantiated empty (NEWOBJ) and given their attributes (BUILD); their code is never looked at.
constexpr const char* kScriptClassRoot = "__torch__";

bool is_script_class(const std::string& name) {
  return name.compare(0, std::strlen(kScriptClassRoot) + 1, std::string(kScriptClassRoot) + ".") == 0;
}

// --- what a weights-only load builds (formats/pickle.h runs the opcodes) -----------------------------------------

// The rules of a torch.save or TorchScript data.pkl. Each tensor it rebuilds is an object whose TorchTensor the
// rules keep (tensor_of), with the storages they name (storages_seen).
class TorchPickleRules final : public PickleRules {
 public:
  explicit TorchPickleRules(PickleDialect dialect) : dialect_(dialect) {}

  bool allows_global(const std::string& name) const override {
    if (dialect_ == PickleDialect::kScriptModule && is_script_class(name)) return true;
    return name == kOrderedDict || name == kRebuildTensor || name == kRebuildParameter || kStorageTypes.count(name);
  }

  Result<PickleValuePtr> persistent_load(PickleArena& arena, const PickleValue& pid) override {
    // ('storage', <StorageType>, key, location, numel)
    using Kind = PickleValue::Kind;
    if (pid.kind != Kind::kTuple || pid.items.size() != 5 || pid.items[0]->kind != Kind::kString ||
        pid.items[0]->text != "storage" || pid.items[1]->kind != Kind::kGlobal ||
        !kStorageTypes.count(pid.items[1]->text) || pid.items[2]->kind != Kind::kString ||
        pid.items[3]->kind != Kind::kString || pid.items[4]->kind != Kind::kInt || pid.items[4]->integer < 0) {
      return pickle_refusal("persistent id is not ('storage', <storage type>, key, location, numel)");
    }
    const std::string& location = pid.items[3]->text;
    if (location.rfind("cpu", 0) != 0 && location.rfind("cuda", 0) != 0) {
      return pickle_refusal("storage location \"" + location + "\" is not cpu or cuda");
    }
    auto v = arena.make(Kind::kObject);
    v->text = kStorageRecord;
    TorchStorage& storage = storages_[v];
    storage.dtype = kStorageTypes.at(pid.items[1]->text);
    storage.key = pid.items[2]->text;
    storage.location = location;
    storage.numel = static_cast<uint64_t>(pid.items[4]->integer);
    return v;
  }

  Result<PickleValuePtr> reduce(PickleArena& arena, const PickleValue& callable, const PickleValue& args) override {
    using Kind = PickleValue::Kind;
    const auto& a = args.items;
    if (callable.text == kOrderedDict) {
      if (!a.empty()) return pickle_refusal("OrderedDict called with arguments");
      return arena.make(Kind::kDict);
    }
    if (callable.text == kRebuildTensor) {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (a.size() < 6 || a.size() > 7 || !storages_.count(a[0]) || a[1]->kind != Kind::kInt || a[1]->integer < 0 ||
          a[4]->kind != Kind::kBool || a[5]->kind != Kind::kDict || !a[5]->dict.empty()) {
        return pickle_refusal("unexpected arguments to _rebuild_tensor_v2");
      }
      auto size = int_tuple(*a[2], "tensor size");
      if (!size) return size.error();
      auto stride = int_tuple(*a[3], "tensor stride");
      if (!stride) return stride.error();
      if (size.value().size() != stride.value().size()) return pickle_refusal("tensor size and stride differ in rank");
      const TorchStorage& storage = storages_.at(a[0]);
      auto v = arena.make(Kind::kObject);
      v->text = callable.text;
      TorchTensor& tensor = tensors_[v];
      tensor.dtype = storage.dtype;
      tensor.storage_key = storage.key;
      tensor.storage_offset = static_cast<uint64_t>(a[1]->integer);
      tensor.shape = std::move(size).value();
      tensor.strides = std::move(stride).value();
      tensor.requires_grad = a[4]->boolean;
      auto [seen, added] = storages_seen.emplace(storage.key, storage);
      if (!added && (seen->second.dtype != storage.dtype || seen->second.numel != storage.numel)) {
        return pickle_refusal("storage " + storage.key + " is described twice differently");
      }
      return v;
    }
    if (callable.text == kRebuildParameter) {
      // (tensor, requires_grad, backward_hooks)
      if (a.size() != 3 || !tensors_.count(a[0]) || a[1]->kind != Kind::kBool || a[2]->kind != Kind::kDict ||
          !a[2]->dict.empty()) {
        return pickle_refusal("unexpected arguments to _rebuild_parameter");
      }
      auto v = arena.make(Kind::kObject);
      v->text = callable.text;
      TorchTensor& tensor = tensors_[v] = tensors_.at(a[0]);
      tensor.is_parameter = true;
      tensor.requires_grad = a[1]->boolean;
      return v;
    }
    return PickleRules::reduce(arena, callable, args);
  }

  // An empty instance of a TorchScript module class, given its attributes by BUILD.
  Result<PickleValuePtr> new_object(PickleArena& arena, const PickleValue& cls, const PickleValue& args) override {
    if (!is_script_class(cls.text) || !args.items.empty()) {
      return pickle_refusal("NEWOBJ is only allowed to create a TorchScript module object");
    }
    auto v = arena.make(PickleValue::Kind::kObject);
    v->text = cls.text;
    modules_.insert(v);
    return v;
  }

  // A module object's attributes, or the attribute state of an OrderedDict (ignored).
  Status build(PickleValue& target, PickleValuePtr state) override {
    if (modules_.count(&target)) {
      if (state->kind != PickleValue::Kind::kDict || !target.dict.empty()) {
        return pickle_refusal("BUILD of a module object without an attribute dict, or twice");
      }
      target.dict = state->dict;
      return Ok{};
    }
    if (target.kind != PickleValue::Kind::kDict ||
        (state->kind != PickleValue::Kind::kDict && state->kind != PickleValue::Kind::kNone)) {
      return pickle_refusal("BUILD is only allowed to set the attributes of an OrderedDict");
    }
    return Ok{};
  }

  // The tensor a value is, or nullptr; whether it is a module object.
  const TorchTensor* tensor_of(const PickleValue* v) const {
    auto at = tensors_.find(const_cast<PickleValue*>(v));
    return at == tensors_.end() ? nullptr : &at->second;
  }
  bool is_module(const PickleValue* v) const { return modules_.count(const_cast<PickleValue*>(v)) != 0; }
  // What a value is, in errors.
  const char* describe(const PickleValue* v) const {
    if (tensor_of(v)) return "tensor";
    if (is_module(v)) return "module";
    return kind_name(v->kind);
  }

  std::map<std::string, TorchStorage> storages_seen;  // by key, as every rebuilt tensor names them

 private:
  static Result<std::vector<uint64_t>> int_tuple(const PickleValue& v, const char* what) {
    if (v.kind != PickleValue::Kind::kTuple) return pickle_refusal(std::string(what) + " is not a tuple");
    std::vector<uint64_t> out;
    for (const auto& item : v.items) {
      if (item->kind != PickleValue::Kind::kInt || item->integer < 0) {
        return pickle_refusal(std::string(what) + " has a non-index entry");
      }
      out.push_back(static_cast<uint64_t>(item->integer));
    }
    return out;
  }

  PickleDialect dialect_;
  std::unordered_map<PickleValuePtr, TorchStorage> storages_;
  std::unordered_map<PickleValuePtr, TorchTensor> tensors_;
  std::unordered_set<PickleValuePtr> modules_;
};

bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }
bool checked_add(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_add_overflow(a, b, out); }

// Elements a view needs from its storage: offset + sum((size_i - 1) * stride_i) + 1, or 0 for an empty view.
std::optional<uint64_t> view_extent(const TorchTensor& t) {
  uint64_t last = t.storage_offset;
  for (size_t i = 0; i < t.shape.size(); ++i) {
    if (t.shape[i] == 0) return 0;
    uint64_t step = 0;
    if (!checked_mul(t.shape[i] - 1, t.strides[i], &step) || !checked_add(last, step, &last)) return std::nullopt;
  }
  uint64_t extent = 0;
  if (!checked_add(last, 1, &extent)) return std::nullopt;
  return extent;
}

}  // namespace

uint64_t TorchTensor::numel() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

namespace {

// An archive's zip index and its unpickled data.pkl. The values live in the unpickler's arena, which stays alive
// with this; the pickle's bytes are read only while it runs.
struct UnpickledArchive {
  ZipIndex zip;
  std::string prefix;  // the archive folder with its '/': "archive/", "dense_arch/"
  std::unique_ptr<TorchPickleRules> rules;
  std::unique_ptr<Unpickler> unpickler;
  PickleValuePtr root = nullptr;
};

// The archive that is `size` bytes of the open file `fd` from `base` on (a whole torch.save file, or a Distributed
// Checkpoint's item).
Result<UnpickledArchive> unpickle_archive_at(int fd, uint64_t base, uint64_t size, const std::string& path,
                                             PickleDialect dialect) {
  // torch.jit.save deflates its code/ records: indexed (to be copied), never read
  const ZipCompression compression =
      dialect == PickleDialect::kScriptModule ? ZipCompression::kCopyOnly : ZipCompression::kRefuse;
  auto zip = read_zip_index_at(fd, base, size, path, compression);
  if (!zip) return zip.error();

  // The archive folder is whatever name torch.save gave it: the one directory holding data.pkl.
  UnpickledArchive out;
  for (const auto& [name, entry] : zip.value().entries) {
    if (name.size() >= 9 && name.compare(name.size() - 9, 9, "/data.pkl") == 0 &&
        name.find('/') == name.size() - 9) {
      if (!out.prefix.empty()) return bad_input(path, "archive holds more than one data.pkl");
      out.prefix = name.substr(0, name.size() - 8);  // keeps the trailing '/'
    }
  }
  if (out.prefix.empty()) return bad_input(path, "archive has no <folder>/data.pkl: not a torch.save file");
  // the format version, where torch's reader looks: .data/version, else version
  auto version = zip.value().entries.find(out.prefix + ".data/version");
  if (version == zip.value().entries.end()) version = zip.value().entries.find(out.prefix + "version");
  if (version == zip.value().entries.end()) return bad_input(path, "archive has no version record: not a torch file");
  auto version_text = read_zip_entry(fd, zip.value(), version->second, 32);
  if (!version_text) return version_text.error();
  uint64_t format_version = 0;
  const std::string& digits = version_text.value();
  size_t end = 0;
  while (end < digits.size() && end < 19 && digits[end] >= '0' && digits[end] <= '9') {
    format_version = format_version * 10 + static_cast<uint64_t>(digits[end++] - '0');
  }
  if (end == 0 || digits.find_first_not_of("\n\r ", end) != std::string::npos ||
      format_version < kMinTorchFormatVersion || format_version > kMaxTorchFormatVersion) {
    return bad_input(path, "archive format version " + quoted_name(digits) + " is not one torch reads (" +
                               std::to_string(kMinTorchFormatVersion) + " to " +
                               std::to_string(kMaxTorchFormatVersion) + ")");
  }
  auto byteorder = zip.value().entries.find(out.prefix + "byteorder");
  if (byteorder != zip.value().entries.end()) {
    auto order = read_zip_entry(fd, zip.value(), byteorder->second, 16);
    if (!order) return order.error();
    if (order.value() != "little") return bad_input(path, "byteorder is \"" + order.value() + "\", only little is supported");
  }
  auto pickle = read_zip_entry(fd, zip.value(), zip.value().entries.at(out.prefix + "data.pkl"), kMaxPickleBytes);
  if (!pickle) return pickle.error();
  out.rules = std::make_unique<TorchPickleRules>(dialect);
  out.unpickler = std::make_unique<Unpickler>(pickle.value(), path, "data.pkl", "a weights-only load", *out.rules);
  auto root = out.unpickler->run();
  if (!root) return root.error();
  out.root = root.value();
  out.zip = std::move(zip).value();
  return out;
}

Result<UnpickledArchive> unpickle_archive(const std::string& path, PickleDialect dialect) {
  auto opened = open_input_file(path);
  if (!opened) return opened.error();
  FileDescriptor fd = std::move(opened).value();
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return bad_input(path, std::string("cannot stat: ") + std::strerror(errno));
  return unpickle_archive_at(fd.get(), 0, static_cast<uint64_t>(st.st_size), path, dialect);
}

// The storages the pickle named, each checked against its archive entry.
Status add_storages(const UnpickledArchive& archive, TorchStateDict& state) {
  for (auto [key, storage] : archive.rules->storages_seen) {
    auto entry = archive.zip.entries.find(archive.prefix + "data/" + key);
    if (entry == archive.zip.entries.end()) return bad_input(state.path, "storage " + key + " is missing from the archive");
    uint64_t bytes = 0;
    if (!checked_mul(storage.numel, dtype_bits(storage.dtype) / 8, &bytes) || entry->second.size != bytes) {
      return bad_input(state.path, "storage " + key + " has " + std::to_string(entry->second.size) + " bytes, " +
                                       std::to_string(storage.numel) + " elements need " + std::to_string(bytes));
    }
    storage.entry = entry->second;
    state.storages.emplace(key, storage);
  }
  return Ok{};
}

// Adds a tensor under `name` once its view is known to fit inside its storage.
Status add_tensor(TorchStateDict& state, TorchTensor tensor, const std::string& name) {
  tensor.name = name;
  auto extent = view_extent(tensor);
  const uint64_t numel = state.storages.at(tensor.storage_key).numel;
  if (!extent || extent.value() > numel) {
    return bad_input(state.path, "tensor \"" + tensor.name + "\" reaches past the end of storage " +
                                     tensor.storage_key + " (" + std::to_string(numel) + " elements)");
  }
  state.tensors.push_back(std::move(tensor));
  return Ok{};
}

}  // namespace

Result<TorchStateDict> read_torch_state_dict(const std::string& path, NonTensorEntries others) {
  auto archive = unpickle_archive(path, PickleDialect::kStateDict);
  if (!archive) return archive.error();
  const TorchPickleRules& rules = *archive.value().rules;
  const PickleValuePtr root = archive.value().root;
  if (root->kind != PickleValue::Kind::kDict) {
    return bad_input(path, std::string("the saved object is a ") + rules.describe(root) + ", not a state dict");
  }
  TorchStateDict state;
  state.path = path;
  auto stored = add_storages(archive.value(), state);
  if (!stored) return stored.error();
  for (const auto& [key, value] : root->dict) {
    const TorchTensor* tensor = rules.tensor_of(value);
    if (others == NonTensorEntries::kSkip && (key->kind != PickleValue::Kind::kString || !tensor)) {
      continue;
    }
    if (key->kind != PickleValue::Kind::kString) return bad_input(path, "state dict has a key that is not a string");
    if (!tensor) {
      return bad_input(path, "state dict entry \"" + key->text + "\" is a " + rules.describe(value) + ", not a tensor");
    }
    auto added = add_tensor(state, *tensor, key->text);
    if (!added) return added.error();
  }
  state.zip = std::move(archive.value().zip);
  state.archive_folder = archive.value().prefix;
  return state;
}

Result<TorchStateDict> read_torchscript_tensors(const std::string& path) {
  auto archive = unpickle_archive(path, PickleDialect::kScriptModule);
  if (!archive) return archive.error();
  const TorchPickleRules& rules = *archive.value().rules;
  const PickleValuePtr root = archive.value().root;
  if (!rules.is_module(root)) {
    return bad_input(path, std::string("is not a TorchScript file: its data.pkl holds a ") + rules.describe(root) +
                               ", not a module");
  }
  TorchStateDict state;
  state.path = path;
  auto stored = add_storages(archive.value(), state);
  if (!stored) return stored.error();
  // Depth first, attributes in their saved order, with an explicit stack (no recursion on a hostile nesting); a
  // module reached twice is walked once, under its first name, as named_modules() does.
  std::vector<std::pair<PickleValuePtr, std::string>> todo{{root, ""}};
  std::set<PickleValuePtr> seen{root};
  while (!todo.empty()) {
    auto [object, path_prefix] = todo.back();
    todo.pop_back();
    std::vector<std::pair<PickleValuePtr, std::string>> children;
    for (const auto& [key, value] : object->dict) {
      if (key->kind != PickleValue::Kind::kString) return bad_input(path, "a module attribute name is not a string");
      const std::string name = path_prefix + key->text;
      if (const TorchTensor* tensor = rules.tensor_of(value)) {
        auto added = add_tensor(state, *tensor, name);
        if (!added) return added.error();
      } else if (rules.is_module(value) && seen.insert(value).second) {
        children.emplace_back(value, name + ".");
      }
    }
    todo.insert(todo.end(), children.rbegin(), children.rend());
  }
  state.zip = std::move(archive.value().zip);
  state.archive_folder = archive.value().prefix;
  return state;
}

Result<TorchStateDict> read_torch_tensor_item(int fd, uint64_t base, uint64_t size, const std::string& path) {
  auto archive = unpickle_archive_at(fd, base, size, path, PickleDialect::kStateDict);
  if (!archive) return archive.error();
  const TorchPickleRules& rules = *archive.value().rules;
  const TorchTensor* tensor = rules.tensor_of(archive.value().root);
  if (!tensor) return bad_input(path, std::string("the item holds a ") + rules.describe(archive.value().root) + ", not a tensor");
  TorchStateDict state;
  state.path = path;
  auto stored = add_storages(archive.value(), state);
  if (!stored) return stored.error();
  auto added = add_tensor(state, *tensor, "");
  if (!added) return added.error();
  state.zip = std::move(archive.value().zip);
  state.archive_folder = archive.value().prefix;
  return state;
}

Result<std::string> read_tensor_data(const TorchStateDict& state, const TorchTensor& tensor) {
  const TorchStorage& storage = state.storages.at(tensor.storage_key);
  auto opened = open_input_file(state.path);
  if (!opened) return opened.error();
  FileDescriptor fd = std::move(opened).value();
  auto bytes = read_zip_entry(fd.get(), state.zip, storage.entry, kMaxTorchStorageBytes);
  if (!bytes) return bytes.error();
  const size_t item = dtype_bits(tensor.dtype) / 8;
  const uint64_t count = tensor.numel();
  std::string out(count * item, '\0');
  // Walk the view in row-major order: an index counter over the shape, a running storage position.
  std::vector<uint64_t> index(tensor.shape.size(), 0);
  for (uint64_t n = 0; n < count; ++n) {
    uint64_t at = tensor.storage_offset;
    for (size_t d = 0; d < index.size(); ++d) at += index[d] * tensor.strides[d];
    std::memcpy(out.data() + n * item, bytes.value().data() + at * item, item);
    for (size_t d = index.size(); d-- > 0;) {
      if (++index[d] < tensor.shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

}  // namespace recis_convert
