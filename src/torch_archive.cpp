#include "recis_convert/file_descriptor.h"
#include "recis_convert/torch_archive.h"
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
#include <fcntl.h>
#include "recis_convert/file_descriptor.h"
#include <sys/stat.h>
#include "recis_convert/file_descriptor.h"
#include <unistd.h>
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
#include <cerrno>
#include "recis_convert/file_descriptor.h"
#include <cstdio>
#include "recis_convert/file_descriptor.h"
#include <cstring>
#include "recis_convert/file_descriptor.h"
#include <memory>
#include "recis_convert/file_descriptor.h"
#include <optional>
#include "recis_convert/file_descriptor.h"
#include <unordered_map>
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
namespace recis_convert {
#include "recis_convert/file_descriptor.h"
namespace {
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
constexpr uint64_t kMaxPickleBytes = 256ull << 20;
#include "recis_convert/file_descriptor.h"
constexpr uint64_t kMaxStorageBytes = 16ull << 30;
#include "recis_convert/file_descriptor.h"
constexpr size_t kMaxStackItems = 10'000'000;
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
// --- the values a state-dict pickle can build ------------------------------------------------------------------
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
struct Value;
#include "recis_convert/file_descriptor.h"
using ValuePtr = std::shared_ptr<Value>;
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
struct Value {
#include "recis_convert/file_descriptor.h"
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor };
#include "recis_convert/file_descriptor.h"
  Kind kind = Kind::kNone;
#include "recis_convert/file_descriptor.h"
  bool boolean = false;
#include "recis_convert/file_descriptor.h"
  int64_t integer = 0;
#include "recis_convert/file_descriptor.h"
  double real = 0;
#include "recis_convert/file_descriptor.h"
  std::string text;                                 // string; global as "module.name"
#include "recis_convert/file_descriptor.h"
  std::vector<ValuePtr> items;                      // tuple, list
#include "recis_convert/file_descriptor.h"
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;  // insertion order
#include "recis_convert/file_descriptor.h"
  std::unordered_map<std::string, size_t> string_keys;  // dict position of each str key (repeated keys)
#include "recis_convert/file_descriptor.h"
  TorchStorage storage;
#include "recis_convert/file_descriptor.h"
  TorchTensor tensor;
#include "recis_convert/file_descriptor.h"
};
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
ValuePtr make(Value::Kind kind) {
#include "recis_convert/file_descriptor.h"
  auto v = std::make_shared<Value>();
#include "recis_convert/file_descriptor.h"
  v->kind = kind;
#include "recis_convert/file_descriptor.h"
  return v;
#include "recis_convert/file_descriptor.h"
}
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
const char* kind_name(Value::Kind kind) {
#include "recis_convert/file_descriptor.h"
  switch (kind) {
#include "recis_convert/file_descriptor.h"
    case Value::Kind::kNone: return "None";
#include "recis_convert/file_descriptor.h"
    case Value::Kind::kBool: return "bool";
#include "recis_convert/file_descriptor.h"
    case Value::Kind::kInt: return "int";
#include "recis_convert/file_descriptor.h"
    case Value::Kind::kFloat: return "float";
#include "recis_convert/file_descriptor.h"
    case Value::Kind::kString: return "str";
#include "recis_convert/file_descriptor.h"
    case Value::Kind::kTuple: return "tuple";
#include "recis_convert/file_descriptor.h"
    case Value::Kind::kList: return "list";
#include "recis_convert/file_descriptor.h"
    case Value::Kind::kDict: return "dict";
#include "recis_convert/file_descriptor.h"
    case Value::Kind::kGlobal: return "global";
#include "recis_convert/file_descriptor.h"
    case Value::Kind::kStorage: return "storage";
#include "recis_convert/file_descriptor.h"
    case Value::Kind::kTensor: return "tensor";
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"
  return "?";
#include "recis_convert/file_descriptor.h"
}
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
// The only globals a weights-only load may name. Nothing is ever called: REDUCE of these builds values.
#include "recis_convert/file_descriptor.h"
const std::map<std::string, DType> kStorageTypes = {
#include "recis_convert/file_descriptor.h"
    {"torch.FloatStorage", DType::kF32}, {"torch.DoubleStorage", DType::kF64}, {"torch.HalfStorage", DType::kF16},
#include "recis_convert/file_descriptor.h"
    {"torch.BFloat16Storage", DType::kBF16}, {"torch.LongStorage", DType::kI64}, {"torch.IntStorage", DType::kI32},
#include "recis_convert/file_descriptor.h"
    {"torch.ShortStorage", DType::kI16}, {"torch.CharStorage", DType::kI8}, {"torch.ByteStorage", DType::kU8},
#include "recis_convert/file_descriptor.h"
    {"torch.BoolStorage", DType::kBool},
#include "recis_convert/file_descriptor.h"
};
#include "recis_convert/file_descriptor.h"
const char* kOrderedDict = "collections.OrderedDict";
#include "recis_convert/file_descriptor.h"
const char* kRebuildTensor = "torch._utils._rebuild_tensor_v2";
#include "recis_convert/file_descriptor.h"
const char* kRebuildParameter = "torch._utils._rebuild_parameter";
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
bool allowed_global(const std::string& name) {
#include "recis_convert/file_descriptor.h"
  return name == kOrderedDict || name == kRebuildTensor || name == kRebuildParameter || kStorageTypes.count(name);
#include "recis_convert/file_descriptor.h"
}
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
// --- the interpreter -------------------------------------------------------------------------------------------
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
class Unpickler {
#include "recis_convert/file_descriptor.h"
 public:
#include "recis_convert/file_descriptor.h"
  Unpickler(const std::string& bytes, std::string file) : bytes_(bytes), file_(std::move(file)) {}
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  Result<ValuePtr> run() {
#include "recis_convert/file_descriptor.h"
    while (true) {
#include "recis_convert/file_descriptor.h"
      if (pos_ >= bytes_.size()) return fail("pickle ends without STOP");
#include "recis_convert/file_descriptor.h"
      op_at_ = pos_;
#include "recis_convert/file_descriptor.h"
      const unsigned char op = static_cast<unsigned char>(bytes_[pos_++]);
#include "recis_convert/file_descriptor.h"
      if (op == '.') {
#include "recis_convert/file_descriptor.h"
        if (stack_.size() != 1 || !marks_.empty()) return fail("STOP with a malformed stack");
#include "recis_convert/file_descriptor.h"
        return stack_.back();
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      auto step = execute(op);
#include "recis_convert/file_descriptor.h"
      if (!step) return step.error();
#include "recis_convert/file_descriptor.h"
      if (stack_.size() > kMaxStackItems) return fail("pickle builds too many objects");
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
 private:
#include "recis_convert/file_descriptor.h"
  Error fail(const std::string& what) const {
#include "recis_convert/file_descriptor.h"
    return bad_input(file_, "data.pkl offset " + std::to_string(op_at_) + ": " + what);
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  Result<uint64_t> read_uint(int bytes) {
#include "recis_convert/file_descriptor.h"
    if (bytes_.size() - pos_ < static_cast<size_t>(bytes)) return fail("pickle truncated");
#include "recis_convert/file_descriptor.h"
    uint64_t v = 0;
#include "recis_convert/file_descriptor.h"
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes_[pos_ + i]);
#include "recis_convert/file_descriptor.h"
    pos_ += static_cast<size_t>(bytes);
#include "recis_convert/file_descriptor.h"
    return v;
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  Result<std::string> read_bytes(uint64_t n) {
#include "recis_convert/file_descriptor.h"
    if (bytes_.size() - pos_ < n) return fail("pickle truncated");
#include "recis_convert/file_descriptor.h"
    std::string out = bytes_.substr(pos_, n);
#include "recis_convert/file_descriptor.h"
    pos_ += n;
#include "recis_convert/file_descriptor.h"
    return out;
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  Result<std::string> read_line() {
#include "recis_convert/file_descriptor.h"
    size_t nl = bytes_.find('\n', pos_);
#include "recis_convert/file_descriptor.h"
    if (nl == std::string::npos) return fail("pickle truncated");
#include "recis_convert/file_descriptor.h"
    std::string out = bytes_.substr(pos_, nl - pos_);
#include "recis_convert/file_descriptor.h"
    pos_ = nl + 1;
#include "recis_convert/file_descriptor.h"
    return out;
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  Result<ValuePtr> pop() {
#include "recis_convert/file_descriptor.h"
    if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back())) return fail("stack underflow");
#include "recis_convert/file_descriptor.h"
    ValuePtr v = stack_.back();
#include "recis_convert/file_descriptor.h"
    stack_.pop_back();
#include "recis_convert/file_descriptor.h"
    return v;
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  Result<std::vector<ValuePtr>> pop_to_mark() {
#include "recis_convert/file_descriptor.h"
    if (marks_.empty()) return fail("no MARK on the stack");
#include "recis_convert/file_descriptor.h"
    std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()), stack_.end());
#include "recis_convert/file_descriptor.h"
    stack_.resize(marks_.back());
#include "recis_convert/file_descriptor.h"
    marks_.pop_back();
#include "recis_convert/file_descriptor.h"
    return items;
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  Status push_string(uint64_t length) {
#include "recis_convert/file_descriptor.h"
    auto text = read_bytes(length);
#include "recis_convert/file_descriptor.h"
    if (!text) return text.error();
#include "recis_convert/file_descriptor.h"
    auto v = make(Value::Kind::kString);
#include "recis_convert/file_descriptor.h"
    v->text = std::move(text).value();
#include "recis_convert/file_descriptor.h"
    stack_.push_back(v);
#include "recis_convert/file_descriptor.h"
    return Ok{};
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  Status push_int(int64_t i) {
#include "recis_convert/file_descriptor.h"
    auto v = make(Value::Kind::kInt);
#include "recis_convert/file_descriptor.h"
    v->integer = i;
#include "recis_convert/file_descriptor.h"
    stack_.push_back(v);
#include "recis_convert/file_descriptor.h"
    return Ok{};
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  Status push_global(const std::string& module, const std::string& name) {
#include "recis_convert/file_descriptor.h"
    const std::string full = module + "." + name;
#include "recis_convert/file_descriptor.h"
    if (!allowed_global(full)) {
#include "recis_convert/file_descriptor.h"
      return fail("global " + full + " is not allowed in a weights-only load (nothing is executed)");
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
    auto v = make(Value::Kind::kGlobal);
#include "recis_convert/file_descriptor.h"
    v->text = full;
#include "recis_convert/file_descriptor.h"
    stack_.push_back(v);
#include "recis_convert/file_descriptor.h"
    return Ok{};
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  Status memo_put(uint64_t key) {
#include "recis_convert/file_descriptor.h"
    if (stack_.empty()) return fail("memo put on an empty stack");
#include "recis_convert/file_descriptor.h"
    memo_[key] = stack_.back();
#include "recis_convert/file_descriptor.h"
    return Ok{};
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  Status set_items(const ValuePtr& target, const std::vector<ValuePtr>& pairs) {
#include "recis_convert/file_descriptor.h"
    if (target->kind != Value::Kind::kDict) return fail(std::string("SETITEM(S) on a ") + kind_name(target->kind));
#include "recis_convert/file_descriptor.h"
    if (pairs.size() % 2 != 0) return fail("SETITEMS with an odd number of items");
#include "recis_convert/file_descriptor.h"
    for (size_t i = 0; i < pairs.size(); i += 2) {
#include "recis_convert/file_descriptor.h"
      // Python dict semantics: a repeated key keeps its first position and takes the last value.
#include "recis_convert/file_descriptor.h"
      if (pairs[i]->kind == Value::Kind::kString) {
#include "recis_convert/file_descriptor.h"
        auto [it, inserted] = target->string_keys.emplace(pairs[i]->text, target->dict.size());
#include "recis_convert/file_descriptor.h"
        if (!inserted) {
#include "recis_convert/file_descriptor.h"
          target->dict[it->second].second = pairs[i + 1];
#include "recis_convert/file_descriptor.h"
          continue;
#include "recis_convert/file_descriptor.h"
        }
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      target->dict.emplace_back(pairs[i], pairs[i + 1]);
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
    return Ok{};
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  Result<ValuePtr> persistent_load(const ValuePtr& pid) {
#include "recis_convert/file_descriptor.h"
    // ('storage', <StorageType>, key, location, numel)
#include "recis_convert/file_descriptor.h"
    if (pid->kind != Value::Kind::kTuple || pid->items.size() != 5 || pid->items[0]->kind != Value::Kind::kString ||
#include "recis_convert/file_descriptor.h"
        pid->items[0]->text != "storage" || pid->items[1]->kind != Value::Kind::kGlobal ||
#include "recis_convert/file_descriptor.h"
        !kStorageTypes.count(pid->items[1]->text) || pid->items[2]->kind != Value::Kind::kString ||
#include "recis_convert/file_descriptor.h"
        pid->items[3]->kind != Value::Kind::kString || pid->items[4]->kind != Value::Kind::kInt ||
#include "recis_convert/file_descriptor.h"
        pid->items[4]->integer < 0) {
#include "recis_convert/file_descriptor.h"
      return fail("persistent id is not ('storage', <storage type>, key, location, numel)");
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
    const std::string& location = pid->items[3]->text;
#include "recis_convert/file_descriptor.h"
    if (location.rfind("cpu", 0) != 0 && location.rfind("cuda", 0) != 0) {
#include "recis_convert/file_descriptor.h"
      return fail("storage location \"" + location + "\" is not cpu or cuda");
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
    auto v = make(Value::Kind::kStorage);
#include "recis_convert/file_descriptor.h"
    v->storage.dtype = kStorageTypes.at(pid->items[1]->text);
#include "recis_convert/file_descriptor.h"
    v->storage.key = pid->items[2]->text;
#include "recis_convert/file_descriptor.h"
    v->storage.location = location;
#include "recis_convert/file_descriptor.h"
    v->storage.numel = static_cast<uint64_t>(pid->items[4]->integer);
#include "recis_convert/file_descriptor.h"
    return v;
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  Result<std::vector<uint64_t>> int_tuple(const ValuePtr& v, const char* what) {
#include "recis_convert/file_descriptor.h"
    if (v->kind != Value::Kind::kTuple) return fail(std::string(what) + " is not a tuple");
#include "recis_convert/file_descriptor.h"
    std::vector<uint64_t> out;
#include "recis_convert/file_descriptor.h"
    for (const auto& item : v->items) {
#include "recis_convert/file_descriptor.h"
      if (item->kind != Value::Kind::kInt || item->integer < 0) return fail(std::string(what) + " has a non-index entry");
#include "recis_convert/file_descriptor.h"
      out.push_back(static_cast<uint64_t>(item->integer));
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
    return out;
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  Result<ValuePtr> reduce(const ValuePtr& callable, const ValuePtr& args) {
#include "recis_convert/file_descriptor.h"
    if (callable->kind != Value::Kind::kGlobal || args->kind != Value::Kind::kTuple) {
#include "recis_convert/file_descriptor.h"
      return fail("REDUCE of something other than an allowed global");
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
    const auto& a = args->items;
#include "recis_convert/file_descriptor.h"
    if (callable->text == kOrderedDict) {
#include "recis_convert/file_descriptor.h"
      if (!a.empty()) return fail("OrderedDict called with arguments");
#include "recis_convert/file_descriptor.h"
      return make(Value::Kind::kDict);
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
    if (callable->text == kRebuildTensor) {
#include "recis_convert/file_descriptor.h"
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
#include "recis_convert/file_descriptor.h"
      if (a.size() < 6 || a.size() > 7 || a[0]->kind != Value::Kind::kStorage || a[1]->kind != Value::Kind::kInt ||
#include "recis_convert/file_descriptor.h"
          a[1]->integer < 0 || a[4]->kind != Value::Kind::kBool || a[5]->kind != Value::Kind::kDict ||
#include "recis_convert/file_descriptor.h"
          !a[5]->dict.empty()) {
#include "recis_convert/file_descriptor.h"
        return fail("unexpected arguments to _rebuild_tensor_v2");
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      auto size = int_tuple(a[2], "tensor size");
#include "recis_convert/file_descriptor.h"
      if (!size) return size.error();
#include "recis_convert/file_descriptor.h"
      auto stride = int_tuple(a[3], "tensor stride");
#include "recis_convert/file_descriptor.h"
      if (!stride) return stride.error();
#include "recis_convert/file_descriptor.h"
      if (size.value().size() != stride.value().size()) return fail("tensor size and stride differ in rank");
#include "recis_convert/file_descriptor.h"
      auto v = make(Value::Kind::kTensor);
#include "recis_convert/file_descriptor.h"
      v->tensor.dtype = a[0]->storage.dtype;
#include "recis_convert/file_descriptor.h"
      v->tensor.storage_key = a[0]->storage.key;
#include "recis_convert/file_descriptor.h"
      v->tensor.storage_offset = static_cast<uint64_t>(a[1]->integer);
#include "recis_convert/file_descriptor.h"
      v->tensor.shape = std::move(size).value();
#include "recis_convert/file_descriptor.h"
      v->tensor.strides = std::move(stride).value();
#include "recis_convert/file_descriptor.h"
      v->tensor.requires_grad = a[4]->boolean;
#include "recis_convert/file_descriptor.h"
      storages_seen_.emplace(a[0]->storage.key, a[0]->storage);
#include "recis_convert/file_descriptor.h"
      if (storages_seen_.at(a[0]->storage.key).dtype != a[0]->storage.dtype ||
#include "recis_convert/file_descriptor.h"
          storages_seen_.at(a[0]->storage.key).numel != a[0]->storage.numel) {
#include "recis_convert/file_descriptor.h"
        return fail("storage " + a[0]->storage.key + " is described twice differently");
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      return v;
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
    if (callable->text == kRebuildParameter) {
#include "recis_convert/file_descriptor.h"
      // (tensor, requires_grad, backward_hooks)
#include "recis_convert/file_descriptor.h"
      if (a.size() != 3 || a[0]->kind != Value::Kind::kTensor || a[1]->kind != Value::Kind::kBool ||
#include "recis_convert/file_descriptor.h"
          a[2]->kind != Value::Kind::kDict || !a[2]->dict.empty()) {
#include "recis_convert/file_descriptor.h"
        return fail("unexpected arguments to _rebuild_parameter");
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      auto v = make(Value::Kind::kTensor);
#include "recis_convert/file_descriptor.h"
      v->tensor = a[0]->tensor;
#include "recis_convert/file_descriptor.h"
      v->tensor.is_parameter = true;
#include "recis_convert/file_descriptor.h"
      v->tensor.requires_grad = a[1]->boolean;
#include "recis_convert/file_descriptor.h"
      return v;
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
    return fail("global " + callable->text + " cannot be called");
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  Status execute(unsigned char op) {
#include "recis_convert/file_descriptor.h"
    switch (op) {
#include "recis_convert/file_descriptor.h"
      case 0x80: {  // PROTO
#include "recis_convert/file_descriptor.h"
        auto version = read_uint(1);
#include "recis_convert/file_descriptor.h"
        if (!version) return version.error();
#include "recis_convert/file_descriptor.h"
        if (version.value() < 2 || version.value() > 5) return fail("pickle protocol " + std::to_string(version.value()));
#include "recis_convert/file_descriptor.h"
        return Ok{};
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 0x95: {  // FRAME (protocol 4): a length prefix only
#include "recis_convert/file_descriptor.h"
        auto length = read_uint(8);
#include "recis_convert/file_descriptor.h"
        if (!length) return length.error();
#include "recis_convert/file_descriptor.h"
        return Ok{};
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case '(': marks_.push_back(stack_.size()); return Ok{};
#include "recis_convert/file_descriptor.h"
      case ')': stack_.push_back(make(Value::Kind::kTuple)); return Ok{};
#include "recis_convert/file_descriptor.h"
      case ']': stack_.push_back(make(Value::Kind::kList)); return Ok{};
#include "recis_convert/file_descriptor.h"
      case '}': stack_.push_back(make(Value::Kind::kDict)); return Ok{};
#include "recis_convert/file_descriptor.h"
      case 'N': stack_.push_back(make(Value::Kind::kNone)); return Ok{};
#include "recis_convert/file_descriptor.h"
      case 0x88:
#include "recis_convert/file_descriptor.h"
      case 0x89: {  // NEWTRUE, NEWFALSE
#include "recis_convert/file_descriptor.h"
        auto v = make(Value::Kind::kBool);
#include "recis_convert/file_descriptor.h"
        v->boolean = op == 0x88;
#include "recis_convert/file_descriptor.h"
        stack_.push_back(v);
#include "recis_convert/file_descriptor.h"
        return Ok{};
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 'J': {  // BININT
#include "recis_convert/file_descriptor.h"
        auto v = read_uint(4);
#include "recis_convert/file_descriptor.h"
        if (!v) return v.error();
#include "recis_convert/file_descriptor.h"
        return push_int(static_cast<int32_t>(static_cast<uint32_t>(v.value())));
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 'K': {  // BININT1
#include "recis_convert/file_descriptor.h"
        auto v = read_uint(1);
#include "recis_convert/file_descriptor.h"
        if (!v) return v.error();
#include "recis_convert/file_descriptor.h"
        return push_int(static_cast<int64_t>(v.value()));
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 'M': {  // BININT2
#include "recis_convert/file_descriptor.h"
        auto v = read_uint(2);
#include "recis_convert/file_descriptor.h"
        if (!v) return v.error();
#include "recis_convert/file_descriptor.h"
        return push_int(static_cast<int64_t>(v.value()));
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 0x8a: {  // LONG1: little-endian two's complement of n bytes
#include "recis_convert/file_descriptor.h"
        auto n = read_uint(1);
#include "recis_convert/file_descriptor.h"
        if (!n) return n.error();
#include "recis_convert/file_descriptor.h"
        if (n.value() > 8) return fail("integer wider than 64 bits");
#include "recis_convert/file_descriptor.h"
        auto v = read_uint(static_cast<int>(n.value()));
#include "recis_convert/file_descriptor.h"
        if (!v) return v.error();
#include "recis_convert/file_descriptor.h"
        uint64_t raw = v.value();
#include "recis_convert/file_descriptor.h"
        if (n.value() > 0 && n.value() < 8 && (raw >> (8 * n.value() - 1)) & 1) raw |= ~0ull << (8 * n.value());
#include "recis_convert/file_descriptor.h"
        return push_int(static_cast<int64_t>(raw));
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 'G': {  // BINFLOAT, big-endian
#include "recis_convert/file_descriptor.h"
        auto raw = read_bytes(8);
#include "recis_convert/file_descriptor.h"
        if (!raw) return raw.error();
#include "recis_convert/file_descriptor.h"
        uint64_t bits = 0;
#include "recis_convert/file_descriptor.h"
        for (unsigned char c : raw.value()) bits = (bits << 8) | c;
#include "recis_convert/file_descriptor.h"
        auto v = make(Value::Kind::kFloat);
#include "recis_convert/file_descriptor.h"
        std::memcpy(&v->real, &bits, sizeof bits);
#include "recis_convert/file_descriptor.h"
        stack_.push_back(v);
#include "recis_convert/file_descriptor.h"
        return Ok{};
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 'X': {  // BINUNICODE
#include "recis_convert/file_descriptor.h"
        auto n = read_uint(4);
#include "recis_convert/file_descriptor.h"
        if (!n) return n.error();
#include "recis_convert/file_descriptor.h"
        return push_string(n.value());
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 0x8c: {  // SHORT_BINUNICODE
#include "recis_convert/file_descriptor.h"
        auto n = read_uint(1);
#include "recis_convert/file_descriptor.h"
        if (!n) return n.error();
#include "recis_convert/file_descriptor.h"
        return push_string(n.value());
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 0x8d: {  // BINUNICODE8
#include "recis_convert/file_descriptor.h"
        auto n = read_uint(8);
#include "recis_convert/file_descriptor.h"
        if (!n) return n.error();
#include "recis_convert/file_descriptor.h"
        return push_string(n.value());
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 't': {  // TUPLE
#include "recis_convert/file_descriptor.h"
        auto items = pop_to_mark();
#include "recis_convert/file_descriptor.h"
        if (!items) return items.error();
#include "recis_convert/file_descriptor.h"
        auto v = make(Value::Kind::kTuple);
#include "recis_convert/file_descriptor.h"
        v->items = std::move(items).value();
#include "recis_convert/file_descriptor.h"
        stack_.push_back(v);
#include "recis_convert/file_descriptor.h"
        return Ok{};
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 0x85:
#include "recis_convert/file_descriptor.h"
      case 0x86:
#include "recis_convert/file_descriptor.h"
      case 0x87: {  // TUPLE1..3
#include "recis_convert/file_descriptor.h"
        const size_t n = op - 0x84;
#include "recis_convert/file_descriptor.h"
        auto v = make(Value::Kind::kTuple);
#include "recis_convert/file_descriptor.h"
        v->items.resize(n);
#include "recis_convert/file_descriptor.h"
        for (size_t i = n; i-- > 0;) {
#include "recis_convert/file_descriptor.h"
          auto item = pop();
#include "recis_convert/file_descriptor.h"
          if (!item) return item.error();
#include "recis_convert/file_descriptor.h"
          v->items[i] = item.value();
#include "recis_convert/file_descriptor.h"
        }
#include "recis_convert/file_descriptor.h"
        stack_.push_back(v);
#include "recis_convert/file_descriptor.h"
        return Ok{};
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 'q': {  // BINPUT
#include "recis_convert/file_descriptor.h"
        auto key = read_uint(1);
#include "recis_convert/file_descriptor.h"
        if (!key) return key.error();
#include "recis_convert/file_descriptor.h"
        return memo_put(key.value());
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 'r': {  // LONG_BINPUT
#include "recis_convert/file_descriptor.h"
        auto key = read_uint(4);
#include "recis_convert/file_descriptor.h"
        if (!key) return key.error();
#include "recis_convert/file_descriptor.h"
        return memo_put(key.value());
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 0x94: return memo_put(memo_.size());  // MEMOIZE
#include "recis_convert/file_descriptor.h"
      case 'h':
#include "recis_convert/file_descriptor.h"
      case 'j': {  // BINGET, LONG_BINGET
#include "recis_convert/file_descriptor.h"
        auto key = read_uint(op == 'h' ? 1 : 4);
#include "recis_convert/file_descriptor.h"
        if (!key) return key.error();
#include "recis_convert/file_descriptor.h"
        auto it = memo_.find(key.value());
#include "recis_convert/file_descriptor.h"
        if (it == memo_.end()) return fail("memo key " + std::to_string(key.value()) + " was never stored");
#include "recis_convert/file_descriptor.h"
        stack_.push_back(it->second);
#include "recis_convert/file_descriptor.h"
        return Ok{};
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 's': {  // SETITEM
#include "recis_convert/file_descriptor.h"
        auto value = pop();
#include "recis_convert/file_descriptor.h"
        if (!value) return value.error();
#include "recis_convert/file_descriptor.h"
        auto key = pop();
#include "recis_convert/file_descriptor.h"
        if (!key) return key.error();
#include "recis_convert/file_descriptor.h"
        if (stack_.empty()) return fail("SETITEM without a dict");
#include "recis_convert/file_descriptor.h"
        return set_items(stack_.back(), {key.value(), value.value()});
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 'u': {  // SETITEMS
#include "recis_convert/file_descriptor.h"
        auto items = pop_to_mark();
#include "recis_convert/file_descriptor.h"
        if (!items) return items.error();
#include "recis_convert/file_descriptor.h"
        if (stack_.empty()) return fail("SETITEMS without a dict");
#include "recis_convert/file_descriptor.h"
        return set_items(stack_.back(), items.value());
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 'a':
#include "recis_convert/file_descriptor.h"
      case 'e': {  // APPEND, APPENDS
#include "recis_convert/file_descriptor.h"
        std::vector<ValuePtr> items;
#include "recis_convert/file_descriptor.h"
        if (op == 'a') {
#include "recis_convert/file_descriptor.h"
          auto item = pop();
#include "recis_convert/file_descriptor.h"
          if (!item) return item.error();
#include "recis_convert/file_descriptor.h"
          items.push_back(item.value());
#include "recis_convert/file_descriptor.h"
        } else {
#include "recis_convert/file_descriptor.h"
          auto popped = pop_to_mark();
#include "recis_convert/file_descriptor.h"
          if (!popped) return popped.error();
#include "recis_convert/file_descriptor.h"
          items = std::move(popped).value();
#include "recis_convert/file_descriptor.h"
        }
#include "recis_convert/file_descriptor.h"
        if (stack_.empty() || stack_.back()->kind != Value::Kind::kList) return fail("APPEND(S) without a list");
#include "recis_convert/file_descriptor.h"
        for (auto& item : items) stack_.back()->items.push_back(item);
#include "recis_convert/file_descriptor.h"
        return Ok{};
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 'c': {  // GLOBAL "module\nname\n"
#include "recis_convert/file_descriptor.h"
        auto module = read_line();
#include "recis_convert/file_descriptor.h"
        if (!module) return module.error();
#include "recis_convert/file_descriptor.h"
        auto name = read_line();
#include "recis_convert/file_descriptor.h"
        if (!name) return name.error();
#include "recis_convert/file_descriptor.h"
        return push_global(module.value(), name.value());
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 0x93: {  // STACK_GLOBAL
#include "recis_convert/file_descriptor.h"
        auto name = pop();
#include "recis_convert/file_descriptor.h"
        if (!name) return name.error();
#include "recis_convert/file_descriptor.h"
        auto module = pop();
#include "recis_convert/file_descriptor.h"
        if (!module) return module.error();
#include "recis_convert/file_descriptor.h"
        if (module.value()->kind != Value::Kind::kString || name.value()->kind != Value::Kind::kString) {
#include "recis_convert/file_descriptor.h"
          return fail("STACK_GLOBAL of non-strings");
#include "recis_convert/file_descriptor.h"
        }
#include "recis_convert/file_descriptor.h"
        return push_global(module.value()->text, name.value()->text);
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 'R': {  // REDUCE
#include "recis_convert/file_descriptor.h"
        auto args = pop();
#include "recis_convert/file_descriptor.h"
        if (!args) return args.error();
#include "recis_convert/file_descriptor.h"
        auto callable = pop();
#include "recis_convert/file_descriptor.h"
        if (!callable) return callable.error();
#include "recis_convert/file_descriptor.h"
        auto v = reduce(callable.value(), args.value());
#include "recis_convert/file_descriptor.h"
        if (!v) return v.error();
#include "recis_convert/file_descriptor.h"
        stack_.push_back(v.value());
#include "recis_convert/file_descriptor.h"
        return Ok{};
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 'Q': {  // BINPERSID
#include "recis_convert/file_descriptor.h"
        auto pid = pop();
#include "recis_convert/file_descriptor.h"
        if (!pid) return pid.error();
#include "recis_convert/file_descriptor.h"
        auto v = persistent_load(pid.value());
#include "recis_convert/file_descriptor.h"
        if (!v) return v.error();
#include "recis_convert/file_descriptor.h"
        stack_.push_back(v.value());
#include "recis_convert/file_descriptor.h"
        return Ok{};
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      case 'b': {  // BUILD: only the attribute state of an OrderedDict (state_dict._metadata), which is ignored
#include "recis_convert/file_descriptor.h"
        auto state = pop();
#include "recis_convert/file_descriptor.h"
        if (!state) return state.error();
#include "recis_convert/file_descriptor.h"
        if (stack_.empty() || stack_.back()->kind != Value::Kind::kDict ||
#include "recis_convert/file_descriptor.h"
            (state.value()->kind != Value::Kind::kDict && state.value()->kind != Value::Kind::kNone)) {
#include "recis_convert/file_descriptor.h"
          return fail("BUILD is only allowed to set the attributes of an OrderedDict");
#include "recis_convert/file_descriptor.h"
        }
#include "recis_convert/file_descriptor.h"
        return Ok{};
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
      default: {
#include "recis_convert/file_descriptor.h"
        char hex[8];
#include "recis_convert/file_descriptor.h"
        std::snprintf(hex, sizeof hex, "0x%02x", op);
#include "recis_convert/file_descriptor.h"
        return fail(std::string("opcode ") + hex + " is not supported in a weights-only load");
#include "recis_convert/file_descriptor.h"
      }
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
 public:
#include "recis_convert/file_descriptor.h"
  std::map<std::string, TorchStorage> storages_seen_;
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
 private:
#include "recis_convert/file_descriptor.h"
  const std::string& bytes_;
#include "recis_convert/file_descriptor.h"
  std::string file_;
#include "recis_convert/file_descriptor.h"
  size_t pos_ = 0;
#include "recis_convert/file_descriptor.h"
  size_t op_at_ = 0;
#include "recis_convert/file_descriptor.h"
  std::vector<ValuePtr> stack_;
#include "recis_convert/file_descriptor.h"
  std::vector<size_t> marks_;
#include "recis_convert/file_descriptor.h"
  std::unordered_map<uint64_t, ValuePtr> memo_;
#include "recis_convert/file_descriptor.h"
};
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }
#include "recis_convert/file_descriptor.h"
bool checked_add(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_add_overflow(a, b, out); }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
// Elements a view needs from its storage: offset + sum((size_i - 1) * stride_i) + 1, or 0 for an empty view.
#include "recis_convert/file_descriptor.h"
std::optional<uint64_t> view_extent(const TorchTensor& t) {
#include "recis_convert/file_descriptor.h"
  uint64_t last = t.storage_offset;
#include "recis_convert/file_descriptor.h"
  for (size_t i = 0; i < t.shape.size(); ++i) {
#include "recis_convert/file_descriptor.h"
    if (t.shape[i] == 0) return 0;
#include "recis_convert/file_descriptor.h"
    uint64_t step = 0;
#include "recis_convert/file_descriptor.h"
    if (!checked_mul(t.shape[i] - 1, t.strides[i], &step) || !checked_add(last, step, &last)) return std::nullopt;
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"
  uint64_t extent = 0;
#include "recis_convert/file_descriptor.h"
  if (!checked_add(last, 1, &extent)) return std::nullopt;
#include "recis_convert/file_descriptor.h"
  return extent;
#include "recis_convert/file_descriptor.h"
}
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
}  // namespace
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
uint64_t TorchTensor::numel() const {
#include "recis_convert/file_descriptor.h"
  uint64_t n = 1;
#include "recis_convert/file_descriptor.h"
  for (uint64_t d : shape) n *= d;
#include "recis_convert/file_descriptor.h"
  return n;
#include "recis_convert/file_descriptor.h"
}
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
Result<TorchStateDict> read_torch_state_dict(const std::string& path) {
#include "recis_convert/file_descriptor.h"
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
#include "recis_convert/file_descriptor.h"
  if (fd.get() < 0) return bad_input(path, std::string("cannot open: ") + std::strerror(errno));
#include "recis_convert/file_descriptor.h"
  struct stat st {};
#include "recis_convert/file_descriptor.h"
  if (::fstat(fd.get(), &st) != 0) return bad_input(path, std::string("cannot stat: ") + std::strerror(errno));
#include "recis_convert/file_descriptor.h"
  auto zip = read_zip_index(fd.get(), static_cast<uint64_t>(st.st_size), path);
#include "recis_convert/file_descriptor.h"
  if (!zip) return zip.error();
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  // The archive folder is whatever name torch.save gave it: the one directory holding data.pkl.
#include "recis_convert/file_descriptor.h"
  std::string prefix;
#include "recis_convert/file_descriptor.h"
  for (const auto& [name, entry] : zip.value().entries) {
#include "recis_convert/file_descriptor.h"
    if (name.size() >= 9 && name.compare(name.size() - 9, 9, "/data.pkl") == 0 &&
#include "recis_convert/file_descriptor.h"
        name.find('/') == name.size() - 9) {
#include "recis_convert/file_descriptor.h"
      if (!prefix.empty()) return bad_input(path, "archive holds more than one data.pkl");
#include "recis_convert/file_descriptor.h"
      prefix = name.substr(0, name.size() - 8);  // keeps the trailing '/'
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"
  if (prefix.empty()) return bad_input(path, "archive has no <folder>/data.pkl: not a torch.save file");
#include "recis_convert/file_descriptor.h"
  auto byteorder = zip.value().entries.find(prefix + "byteorder");
#include "recis_convert/file_descriptor.h"
  if (byteorder != zip.value().entries.end()) {
#include "recis_convert/file_descriptor.h"
    auto order = read_zip_entry(fd.get(), zip.value(), byteorder->second, 16);
#include "recis_convert/file_descriptor.h"
    if (!order) return order.error();
#include "recis_convert/file_descriptor.h"
    if (order.value() != "little") return bad_input(path, "byteorder is \"" + order.value() + "\", only little is supported");
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"
  auto pickle = read_zip_entry(fd.get(), zip.value(), zip.value().entries.at(prefix + "data.pkl"), kMaxPickleBytes);
#include "recis_convert/file_descriptor.h"
  if (!pickle) return pickle.error();
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  Unpickler unpickler(pickle.value(), path);
#include "recis_convert/file_descriptor.h"
  auto root = unpickler.run();
#include "recis_convert/file_descriptor.h"
  if (!root) return root.error();
#include "recis_convert/file_descriptor.h"
  if (root.value()->kind != Value::Kind::kDict) {
#include "recis_convert/file_descriptor.h"
    return bad_input(path, std::string("the saved object is a ") + kind_name(root.value()->kind) + ", not a state dict");
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  TorchStateDict state;
#include "recis_convert/file_descriptor.h"
  state.path = path;
#include "recis_convert/file_descriptor.h"
  for (auto& [key, storage] : unpickler.storages_seen_) {
#include "recis_convert/file_descriptor.h"
    auto entry = zip.value().entries.find(prefix + "data/" + key);
#include "recis_convert/file_descriptor.h"
    if (entry == zip.value().entries.end()) return bad_input(path, "storage " + key + " is missing from the archive");
#include "recis_convert/file_descriptor.h"
    uint64_t bytes = 0;
#include "recis_convert/file_descriptor.h"
    if (!checked_mul(storage.numel, dtype_bits(storage.dtype) / 8, &bytes) || entry->second.size != bytes) {
#include "recis_convert/file_descriptor.h"
      return bad_input(path, "storage " + key + " has " + std::to_string(entry->second.size) + " bytes, " +
#include "recis_convert/file_descriptor.h"
                                 std::to_string(storage.numel) + " elements need " + std::to_string(bytes));
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
    storage.entry = entry->second;
#include "recis_convert/file_descriptor.h"
    state.storages.emplace(key, storage);
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"
  for (const auto& [key, value] : root.value()->dict) {
#include "recis_convert/file_descriptor.h"
    if (key->kind != Value::Kind::kString) return bad_input(path, "state dict has a key that is not a string");
#include "recis_convert/file_descriptor.h"
    if (value->kind != Value::Kind::kTensor) {
#include "recis_convert/file_descriptor.h"
      return bad_input(path, "state dict entry \"" + key->text + "\" is a " + kind_name(value->kind) + ", not a tensor");
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
    TorchTensor tensor = value->tensor;
#include "recis_convert/file_descriptor.h"
    tensor.name = key->text;
#include "recis_convert/file_descriptor.h"
    auto extent = view_extent(tensor);
#include "recis_convert/file_descriptor.h"
    const uint64_t numel = state.storages.at(tensor.storage_key).numel;
#include "recis_convert/file_descriptor.h"
    if (!extent || extent.value() > numel) {
#include "recis_convert/file_descriptor.h"
      return bad_input(path, "tensor \"" + tensor.name + "\" reaches past the end of storage " + tensor.storage_key +
#include "recis_convert/file_descriptor.h"
                                 " (" + std::to_string(numel) + " elements)");
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
    state.tensors.push_back(std::move(tensor));
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"
  state.zip = std::move(zip).value();
#include "recis_convert/file_descriptor.h"
  return state;
#include "recis_convert/file_descriptor.h"
}
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
Result<std::string> read_tensor_data(const TorchStateDict& state, const TorchTensor& tensor) {
#include "recis_convert/file_descriptor.h"
  const TorchStorage& storage = state.storages.at(tensor.storage_key);
#include "recis_convert/file_descriptor.h"
  FileDescriptor fd(::open(state.path.c_str(), O_RDONLY | O_CLOEXEC));
#include "recis_convert/file_descriptor.h"
  if (fd.get() < 0) return bad_input(state.path, std::string("cannot open: ") + std::strerror(errno));
#include "recis_convert/file_descriptor.h"
  auto bytes = read_zip_entry(fd.get(), state.zip, storage.entry, kMaxStorageBytes);
#include "recis_convert/file_descriptor.h"
  if (!bytes) return bytes.error();
#include "recis_convert/file_descriptor.h"
  const size_t item = dtype_bits(tensor.dtype) / 8;
#include "recis_convert/file_descriptor.h"
  const uint64_t count = tensor.numel();
#include "recis_convert/file_descriptor.h"
  std::string out(count * item, '\0');
#include "recis_convert/file_descriptor.h"
  // Walk the view in row-major order: an index counter over the shape, a running storage position.
#include "recis_convert/file_descriptor.h"
  std::vector<uint64_t> index(tensor.shape.size(), 0);
#include "recis_convert/file_descriptor.h"
  for (uint64_t n = 0; n < count; ++n) {
#include "recis_convert/file_descriptor.h"
    uint64_t at = tensor.storage_offset;
#include "recis_convert/file_descriptor.h"
    for (size_t d = 0; d < index.size(); ++d) at += index[d] * tensor.strides[d];
#include "recis_convert/file_descriptor.h"
    std::memcpy(out.data() + n * item, bytes.value().data() + at * item, item);
#include "recis_convert/file_descriptor.h"
    for (size_t d = index.size(); d-- > 0;) {
#include "recis_convert/file_descriptor.h"
      if (++index[d] < tensor.shape[d]) break;
#include "recis_convert/file_descriptor.h"
      index[d] = 0;
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"
  return out;
#include "recis_convert/file_descriptor.h"
}
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
}  // namespace recis_convert
