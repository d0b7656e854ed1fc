#include "recis_convert/formats/torch_archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>

#include "recis_convert/common/file_io.h"

namespace recis_convert {
namespace {

constexpr uint64_t kMaxPickleBytes = 256ull << 20;
// The archive format versions torch reads (caffe2/serialize/versions.h, the same in 1.13 and 2.6): torch.save
// writes 3, torch.jit.save up to 10. torch refuses others, and an archive without a version record, so do we.
constexpr uint64_t kMinTorchFormatVersion = 1;
constexpr uint64_t kMaxTorchFormatVersion = 10;
constexpr size_t kMaxStackItems = 10'000'000;
// Every value the pickle builds (a tensor costs about 25: its storage tuple, size and stride tuples, ints...), so
// 1M is 40,000 tensors, far beyond a dense network and its optimizer state, and caps the reader at ~400 MiB.
constexpr size_t kMaxPickleValues = 1'000'000;

// What a pickle may hold: a state dict (torch.save), or also the module objects of a TorchScript archive.
enum class PickleDialect { kStateDict, kScriptModule };

// --- the values a state-dict pickle can build ------------------------------------------------------------------

// Values are owned flat by the unpickler's arena and point to each other with plain pointers. So nothing is
// ever freed or walked recursively: a list nested 200,000 deep (EMPTY_LIST/APPEND) or one that holds itself
// (memo) costs one arena slot per value and no stack, and no nesting-depth limit is needed.
struct Value;
using ValuePtr = Value*;

struct Value {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor, kObject };
  Kind kind = Kind::kNone;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0;
  std::string text;                                 // string; global as "module.name"
  std::vector<ValuePtr> items;                      // tuple, list
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;  // insertion order; an object's attributes
  std::unordered_map<std::string, size_t> string_keys;  // dict position of each str key (repeated keys)
  TorchStorage storage;
  TorchTensor tensor;
};

const char* kind_name(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::kNone: return "None";
    case Value::Kind::kBool: return "bool";
    case Value::Kind::kInt: return "int";
    case Value::Kind::kFloat: return "float";
    case Value::Kind::kString: return "str";
    case Value::Kind::kTuple: return "tuple";
    case Value::Kind::kList: return "list";
    case Value::Kind::kDict: return "dict";
    case Value::Kind::kGlobal: return "global";
    case Value::Kind::kStorage: return "storage";
    case Value::Kind::kTensor: return "tensor";
    case Value::Kind::kObject: return "object";
  }
  return "?";
}

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

// A TorchScript module's data.pkl also names the classes of its (sub)modules, all under `__torch__`: they are
// only ever instantiated empty (NEWOBJ) and given their attributes (BUILD); their code is never looked at.
constexpr const char* kScriptClassRoot = "__torch__";

bool is_script_class(const std::string& name) {
  return name.compare(0, std::strlen(kScriptClassRoot) + 1, std::string(kScriptClassRoot) + ".") == 0;
}

bool allowed_global(const std::string& name, PickleDialect dialect) {
  if (dialect == PickleDialect::kScriptModule && is_script_class(name)) return true;
  return name == kOrderedDict || name == kRebuildTensor || name == kRebuildParameter || kStorageTypes.count(name);
}

// --- the interpreter -------------------------------------------------------------------------------------------

class Unpickler {
 public:
  Unpickler(const std::string& bytes, std::string file, PickleDialect dialect)
      : bytes_(bytes), file_(std::move(file)), dialect_(dialect) {}

  Result<ValuePtr> run() {
    while (true) {
      if (arena_.size() > kMaxPickleValues) {
        return fail("pickle builds more than " + std::to_string(kMaxPickleValues) + " values");
      }
      if (pos_ >= bytes_.size()) return fail("pickle ends without STOP");
      op_at_ = pos_;
      const unsigned char op = static_cast<unsigned char>(bytes_[pos_++]);
      if (op == '.') {
        if (stack_.size() != 1 || !marks_.empty()) return fail("STOP with a malformed stack");
        return stack_.back();
      }
      auto step = execute(op);
      if (!step) return step.error();
      if (stack_.size() > kMaxStackItems) return fail("pickle builds too many objects");
    }
  }

 private:
  ValuePtr make(Value::Kind kind) {
    arena_.push_back(std::make_unique<Value>());
    arena_.back()->kind = kind;
    return arena_.back().get();
  }

  Error fail(const std::string& what) const {
    return bad_input(file_, "data.pkl offset " + std::to_string(op_at_) + ": " + what);
  }

  Result<uint64_t> read_uint(int bytes) {
    if (bytes_.size() - pos_ < static_cast<size_t>(bytes)) return fail("pickle truncated");
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes_[pos_ + i]);
    pos_ += static_cast<size_t>(bytes);
    return v;
  }

  Result<std::string> read_bytes(uint64_t n) {
    if (bytes_.size() - pos_ < n) return fail("pickle truncated");
    std::string out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }

  Result<std::string> read_line() {
    size_t nl = bytes_.find('\n', pos_);
    if (nl == std::string::npos) return fail("pickle truncated");
    std::string out = bytes_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    return out;
  }

  Result<ValuePtr> pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back())) return fail("stack underflow");
    ValuePtr v = stack_.back();
    stack_.pop_back();
    return v;
  }

  Result<std::vector<ValuePtr>> pop_to_mark() {
    if (marks_.empty()) return fail("no MARK on the stack");
    std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }

  Status push_string(uint64_t length) {
    auto text = read_bytes(length);
    if (!text) return text.error();
    auto v = make(Value::Kind::kString);
    v->text = std::move(text).value();
    stack_.push_back(v);
    return Ok{};
  }

  Status push_int(int64_t i) {
    auto v = make(Value::Kind::kInt);
    v->integer = i;
    stack_.push_back(v);
    return Ok{};
  }

  Status push_global(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    if (!allowed_global(full, dialect_)) {
      return fail("global " + full + " is not allowed in a weights-only load (nothing is executed)");
    }
    auto v = make(Value::Kind::kGlobal);
    v->text = full;
    stack_.push_back(v);
    return Ok{};
  }

  Status memo_put(uint64_t key) {
    if (stack_.empty()) return fail("memo put on an empty stack");
    memo_[key] = stack_.back();
    return Ok{};
  }

  Status set_items(const ValuePtr& target, const std::vector<ValuePtr>& pairs) {
    if (target->kind != Value::Kind::kDict) return fail(std::string("SETITEM(S) on a ") + kind_name(target->kind));
    if (pairs.size() % 2 != 0) return fail("SETITEMS with an odd number of items");
    for (size_t i = 0; i < pairs.size(); i += 2) {
      // Python dict semantics: a repeated key keeps its first position and takes the last value.
      if (pairs[i]->kind == Value::Kind::kString) {
        auto [it, inserted] = target->string_keys.emplace(pairs[i]->text, target->dict.size());
        if (!inserted) {
          target->dict[it->second].second = pairs[i + 1];
          continue;
        }
      }
      target->dict.emplace_back(pairs[i], pairs[i + 1]);
    }
    return Ok{};
  }

  Result<ValuePtr> persistent_load(const ValuePtr& pid) {
    // ('storage', <StorageType>, key, location, numel)
    if (pid->kind != Value::Kind::kTuple || pid->items.size() != 5 || pid->items[0]->kind != Value::Kind::kString ||
        pid->items[0]->text != "storage" || pid->items[1]->kind != Value::Kind::kGlobal ||
        !kStorageTypes.count(pid->items[1]->text) || pid->items[2]->kind != Value::Kind::kString ||
        pid->items[3]->kind != Value::Kind::kString || pid->items[4]->kind != Value::Kind::kInt ||
        pid->items[4]->integer < 0) {
      return fail("persistent id is not ('storage', <storage type>, key, location, numel)");
    }
    const std::string& location = pid->items[3]->text;
    if (location.rfind("cpu", 0) != 0 && location.rfind("cuda", 0) != 0) {
      return fail("storage location \"" + location + "\" is not cpu or cuda");
    }
    auto v = make(Value::Kind::kStorage);
    v->storage.dtype = kStorageTypes.at(pid->items[1]->text);
    v->storage.key = pid->items[2]->text;
    v->storage.location = location;
    v->storage.numel = static_cast<uint64_t>(pid->items[4]->integer);
    return v;
  }

  Result<std::vector<uint64_t>> int_tuple(const ValuePtr& v, const char* what) {
    if (v->kind != Value::Kind::kTuple) return fail(std::string(what) + " is not a tuple");
    std::vector<uint64_t> out;
    for (const auto& item : v->items) {
      if (item->kind != Value::Kind::kInt || item->integer < 0) return fail(std::string(what) + " has a non-index entry");
      out.push_back(static_cast<uint64_t>(item->integer));
    }
    return out;
  }

  Result<ValuePtr> reduce(const ValuePtr& callable, const ValuePtr& args) {
    if (callable->kind != Value::Kind::kGlobal || args->kind != Value::Kind::kTuple) {
      return fail("REDUCE of something other than an allowed global");
    }
    const auto& a = args->items;
    if (callable->text == kOrderedDict) {
      if (!a.empty()) return fail("OrderedDict called with arguments");
      return make(Value::Kind::kDict);
    }
    if (callable->text == kRebuildTensor) {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (a.size() < 6 || a.size() > 7 || a[0]->kind != Value::Kind::kStorage || a[1]->kind != Value::Kind::kInt ||
          a[1]->integer < 0 || a[4]->kind != Value::Kind::kBool || a[5]->kind != Value::Kind::kDict ||
          !a[5]->dict.empty()) {
        return fail("unexpected arguments to _rebuild_tensor_v2");
      }
      auto size = int_tuple(a[2], "tensor size");
      if (!size) return size.error();
      auto stride = int_tuple(a[3], "tensor stride");
      if (!stride) return stride.error();
      if (size.value().size() != stride.value().size()) return fail("tensor size and stride differ in rank");
      auto v = make(Value::Kind::kTensor);
      v->tensor.dtype = a[0]->storage.dtype;
      v->tensor.storage_key = a[0]->storage.key;
      v->tensor.storage_offset = static_cast<uint64_t>(a[1]->integer);
      v->tensor.shape = std::move(size).value();
      v->tensor.strides = std::move(stride).value();
      v->tensor.requires_grad = a[4]->boolean;
      storages_seen_.emplace(a[0]->storage.key, a[0]->storage);
      if (storages_seen_.at(a[0]->storage.key).dtype != a[0]->storage.dtype ||
          storages_seen_.at(a[0]->storage.key).numel != a[0]->storage.numel) {
        return fail("storage " + a[0]->storage.key + " is described twice differently");
      }
      return v;
    }
    if (callable->text == kRebuildParameter) {
      // (tensor, requires_grad, backward_hooks)
      if (a.size() != 3 || a[0]->kind != Value::Kind::kTensor || a[1]->kind != Value::Kind::kBool ||
          a[2]->kind != Value::Kind::kDict || !a[2]->dict.empty()) {
        return fail("unexpected arguments to _rebuild_parameter");
      }
      auto v = make(Value::Kind::kTensor);
      v->tensor = a[0]->tensor;
      v->tensor.is_parameter = true;
      v->tensor.requires_grad = a[1]->boolean;
      return v;
    }
    return fail("global " + callable->text + " cannot be called");
  }

  Status execute(unsigned char op) {
    switch (op) {
      case 0x80: {  // PROTO
        auto version = read_uint(1);
        if (!version) return version.error();
        if (version.value() < 2 || version.value() > 5) return fail("pickle protocol " + std::to_string(version.value()));
        return Ok{};
      }
      case 0x95: {  // FRAME (protocol 4): a length prefix only
        auto length = read_uint(8);
        if (!length) return length.error();
        return Ok{};
      }
      case '(': marks_.push_back(stack_.size()); return Ok{};
      case ')': stack_.push_back(make(Value::Kind::kTuple)); return Ok{};
      case ']': stack_.push_back(make(Value::Kind::kList)); return Ok{};
      case '}': stack_.push_back(make(Value::Kind::kDict)); return Ok{};
      case 'N': stack_.push_back(make(Value::Kind::kNone)); return Ok{};
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        auto v = make(Value::Kind::kBool);
        v->boolean = op == 0x88;
        stack_.push_back(v);
        return Ok{};
      }
      case 'J': {  // BININT
        auto v = read_uint(4);
        if (!v) return v.error();
        return push_int(static_cast<int32_t>(static_cast<uint32_t>(v.value())));
      }
      case 'K': {  // BININT1
        auto v = read_uint(1);
        if (!v) return v.error();
        return push_int(static_cast<int64_t>(v.value()));
      }
      case 'M': {  // BININT2
        auto v = read_uint(2);
        if (!v) return v.error();
        return push_int(static_cast<int64_t>(v.value()));
      }
      case 0x8a: {  // LONG1: little-endian two's complement of n bytes
        auto n = read_uint(1);
        if (!n) return n.error();
        if (n.value() > 8) return fail("integer wider than 64 bits");
        auto v = read_uint(static_cast<int>(n.value()));
        if (!v) return v.error();
        uint64_t raw = v.value();
        if (n.value() > 0 && n.value() < 8 && (raw >> (8 * n.value() - 1)) & 1) raw |= ~0ull << (8 * n.value());
        return push_int(static_cast<int64_t>(raw));
      }
      case 'G': {  // BINFLOAT, big-endian
        auto raw = read_bytes(8);
        if (!raw) return raw.error();
        uint64_t bits = 0;
        for (unsigned char c : raw.value()) bits = (bits << 8) | c;
        auto v = make(Value::Kind::kFloat);
        std::memcpy(&v->real, &bits, sizeof bits);
        stack_.push_back(v);
        return Ok{};
      }
      case 'X': {  // BINUNICODE
        auto n = read_uint(4);
        if (!n) return n.error();
        return push_string(n.value());
      }
      case 0x8c: {  // SHORT_BINUNICODE
        auto n = read_uint(1);
        if (!n) return n.error();
        return push_string(n.value());
      }
      case 0x8d: {  // BINUNICODE8
        auto n = read_uint(8);
        if (!n) return n.error();
        return push_string(n.value());
      }
      case 't': {  // TUPLE
        auto items = pop_to_mark();
        if (!items) return items.error();
        auto v = make(Value::Kind::kTuple);
        v->items = std::move(items).value();
        stack_.push_back(v);
        return Ok{};
      }
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        const size_t n = op - 0x84;
        auto v = make(Value::Kind::kTuple);
        v->items.resize(n);
        for (size_t i = n; i-- > 0;) {
          auto item = pop();
          if (!item) return item.error();
          v->items[i] = item.value();
        }
        stack_.push_back(v);
        return Ok{};
      }
      case 'q': {  // BINPUT
        auto key = read_uint(1);
        if (!key) return key.error();
        return memo_put(key.value());
      }
      case 'r': {  // LONG_BINPUT
        auto key = read_uint(4);
        if (!key) return key.error();
        return memo_put(key.value());
      }
      case 0x94: return memo_put(memo_.size());  // MEMOIZE
      case 'h':
      case 'j': {  // BINGET, LONG_BINGET
        auto key = read_uint(op == 'h' ? 1 : 4);
        if (!key) return key.error();
        auto it = memo_.find(key.value());
        if (it == memo_.end()) return fail("memo key " + std::to_string(key.value()) + " was never stored");
        stack_.push_back(it->second);
        return Ok{};
      }
      case 's': {  // SETITEM
        auto value = pop();
        if (!value) return value.error();
        auto key = pop();
        if (!key) return key.error();
        if (stack_.empty()) return fail("SETITEM without a dict");
        return set_items(stack_.back(), {key.value(), value.value()});
      }
      case 'u': {  // SETITEMS
        auto items = pop_to_mark();
        if (!items) return items.error();
        if (stack_.empty()) return fail("SETITEMS without a dict");
        return set_items(stack_.back(), items.value());
      }
      case 'a':
      case 'e': {  // APPEND, APPENDS
        std::vector<ValuePtr> items;
        if (op == 'a') {
          auto item = pop();
          if (!item) return item.error();
          items.push_back(item.value());
        } else {
          auto popped = pop_to_mark();
          if (!popped) return popped.error();
          items = std::move(popped).value();
        }
        if (stack_.empty() || stack_.back()->kind != Value::Kind::kList) return fail("APPEND(S) without a list");
        for (auto& item : items) stack_.back()->items.push_back(item);
        return Ok{};
      }
      case 'c': {  // GLOBAL "module\nname\n"
        auto module = read_line();
        if (!module) return module.error();
        auto name = read_line();
        if (!name) return name.error();
        return push_global(module.value(), name.value());
      }
      case 0x93: {  // STACK_GLOBAL
        auto name = pop();
        if (!name) return name.error();
        auto module = pop();
        if (!module) return module.error();
        if (module.value()->kind != Value::Kind::kString || name.value()->kind != Value::Kind::kString) {
          return fail("STACK_GLOBAL of non-strings");
        }
        return push_global(module.value()->text, name.value()->text);
      }
      case 'R': {  // REDUCE
        auto args = pop();
        if (!args) return args.error();
        auto callable = pop();
        if (!callable) return callable.error();
        auto v = reduce(callable.value(), args.value());
        if (!v) return v.error();
        stack_.push_back(v.value());
        return Ok{};
      }
      case 'Q': {  // BINPERSID
        auto pid = pop();
        if (!pid) return pid.error();
        auto v = persistent_load(pid.value());
        if (!v) return v.error();
        stack_.push_back(v.value());
        return Ok{};
      }
      case 0x81: {  // NEWOBJ: an empty instance of a TorchScript module class, given its attributes by BUILD
        auto args = pop();
        if (!args) return args.error();
        auto cls = pop();
        if (!cls) return cls.error();
        if (cls.value()->kind != Value::Kind::kGlobal || !is_script_class(cls.value()->text) ||
            args.value()->kind != Value::Kind::kTuple || !args.value()->items.empty()) {
          return fail("NEWOBJ is only allowed to create a TorchScript module object");
        }
        auto v = make(Value::Kind::kObject);
        v->text = cls.value()->text;
        stack_.push_back(v);
        return Ok{};
      }
      case 'b': {  // BUILD: a module object's attributes, or the attribute state of an OrderedDict (ignored)
        auto state = pop();
        if (!state) return state.error();
        if (!stack_.empty() && stack_.back()->kind == Value::Kind::kObject) {
          if (state.value()->kind != Value::Kind::kDict || !stack_.back()->dict.empty()) {
            return fail("BUILD of a module object without an attribute dict, or twice");
          }
          stack_.back()->dict = state.value()->dict;
          return Ok{};
        }
        if (stack_.empty() || stack_.back()->kind != Value::Kind::kDict ||
            (state.value()->kind != Value::Kind::kDict && state.value()->kind != Value::Kind::kNone)) {
          return fail("BUILD is only allowed to set the attributes of an OrderedDict");
        }
        return Ok{};
      }
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        return fail(std::string("opcode ") + hex + " is not supported in a weights-only load");
      }
    }
  }

 public:
  std::map<std::string, TorchStorage> storages_seen_;

 private:
  const std::string& bytes_;  // read only by run()
  std::string file_;
  PickleDialect dialect_;
  size_t pos_ = 0;
  size_t op_at_ = 0;
  std::vector<std::unique_ptr<Value>> arena_;  // owns every value; the rest point into it
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
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
  std::unique_ptr<Unpickler> unpickler;
  ValuePtr root = nullptr;
};

Result<UnpickledArchive> unpickle_archive(const std::string& path, PickleDialect dialect) {
  auto opened = open_input_file(path);
  if (!opened) return opened.error();
  FileDescriptor fd = std::move(opened).value();
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return bad_input(path, std::string("cannot stat: ") + std::strerror(errno));
  // torch.jit.save deflates its code/ records: indexed (to be copied), never read
  const ZipCompression compression =
      dialect == PickleDialect::kScriptModule ? ZipCompression::kCopyOnly : ZipCompression::kRefuse;
  auto zip = read_zip_index(fd.get(), static_cast<uint64_t>(st.st_size), path, compression);
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
  auto version_text = read_zip_entry(fd.get(), zip.value(), version->second, 32);
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
    auto order = read_zip_entry(fd.get(), zip.value(), byteorder->second, 16);
    if (!order) return order.error();
    if (order.value() != "little") return bad_input(path, "byteorder is \"" + order.value() + "\", only little is supported");
  }
  auto pickle = read_zip_entry(fd.get(), zip.value(), zip.value().entries.at(out.prefix + "data.pkl"), kMaxPickleBytes);
  if (!pickle) return pickle.error();
  out.unpickler = std::make_unique<Unpickler>(pickle.value(), path, dialect);
  auto root = out.unpickler->run();
  if (!root) return root.error();
  out.root = root.value();
  out.zip = std::move(zip).value();
  return out;
}

// The storages the pickle named, each checked against its archive entry.
Status add_storages(const UnpickledArchive& archive, TorchStateDict& state) {
  for (auto [key, storage] : archive.unpickler->storages_seen_) {
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
  const ValuePtr root = archive.value().root;
  if (root->kind != Value::Kind::kDict) {
    return bad_input(path, std::string("the saved object is a ") + kind_name(root->kind) + ", not a state dict");
  }
  TorchStateDict state;
  state.path = path;
  auto stored = add_storages(archive.value(), state);
  if (!stored) return stored.error();
  for (const auto& [key, value] : root->dict) {
    if (others == NonTensorEntries::kSkip && (key->kind != Value::Kind::kString || value->kind != Value::Kind::kTensor)) {
      continue;
    }
    if (key->kind != Value::Kind::kString) return bad_input(path, "state dict has a key that is not a string");
    if (value->kind != Value::Kind::kTensor) {
      return bad_input(path, "state dict entry \"" + key->text + "\" is a " + kind_name(value->kind) + ", not a tensor");
    }
    auto added = add_tensor(state, value->tensor, key->text);
    if (!added) return added.error();
  }
  state.zip = std::move(archive.value().zip);
  state.archive_folder = archive.value().prefix;
  return state;
}

Result<TorchStateDict> read_torchscript_tensors(const std::string& path) {
  auto archive = unpickle_archive(path, PickleDialect::kScriptModule);
  if (!archive) return archive.error();
  const ValuePtr root = archive.value().root;
  if (root->kind != Value::Kind::kObject) {
    return bad_input(path, std::string("is not a TorchScript file: its data.pkl holds a ") + kind_name(root->kind) +
                               ", not a module");
  }
  TorchStateDict state;
  state.path = path;
  auto stored = add_storages(archive.value(), state);
  if (!stored) return stored.error();
  // Depth first, attributes in their saved order, with an explicit stack (no recursion on a hostile nesting); a
  // module reached twice is walked once, under its first name, as named_modules() does.
  std::vector<std::pair<ValuePtr, std::string>> todo{{root, ""}};
  std::set<ValuePtr> seen{root};
  while (!todo.empty()) {
    auto [object, path_prefix] = todo.back();
    todo.pop_back();
    std::vector<std::pair<ValuePtr, std::string>> children;
    for (const auto& [key, value] : object->dict) {
      if (key->kind != Value::Kind::kString) return bad_input(path, "a module attribute name is not a string");
      const std::string name = path_prefix + key->text;
      if (value->kind == Value::Kind::kTensor) {
        auto added = add_tensor(state, value->tensor, name);
        if (!added) return added.error();
      } else if (value->kind == Value::Kind::kObject && seen.insert(value).second) {
        children.emplace_back(value, name + ".");
      }
    }
    todo.insert(todo.end(), children.rbegin(), children.rend());
  }
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
