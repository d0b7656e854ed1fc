#include "recis_convert/formats/pickle.h"

#include <cstdio>
#include <cstring>

namespace recis_convert {

const char* kind_name(PickleValue::Kind kind) {
  switch (kind) {
    case PickleValue::Kind::kNone: return "None";
    case PickleValue::Kind::kBool: return "bool";
    case PickleValue::Kind::kInt: return "int";
    case PickleValue::Kind::kFloat: return "float";
    case PickleValue::Kind::kString: return "str";
    case PickleValue::Kind::kTuple: return "tuple";
    case PickleValue::Kind::kList: return "list";
    case PickleValue::Kind::kDict: return "dict";
    case PickleValue::Kind::kGlobal: return "global";
    case PickleValue::Kind::kObject: return "object";
  }
  return "?";
}

PickleValuePtr dict_value(const PickleValue& dict, const std::string& key) {
  if (!dict.string_keys) return nullptr;
  auto at = dict.string_keys->find(key);
  return at == dict.string_keys->end() ? nullptr : dict.dict[at->second].second;
}

PickleValuePtr PickleArena::make(PickleValue::Kind kind) {
  values_.emplace_back();
  values_.back().kind = kind;
  return &values_.back();
}

Error pickle_refusal(const std::string& what) { return bad_input("", what); }

void PickleMemo::put(uint64_t key, PickleValuePtr value) {
  if (key < dense_.size() + kMaxDenseGap) {
    if (key >= dense_.size()) dense_.resize(key + 1, nullptr);
    // a key first stored far ahead, now reached by the vector, moves into it
    const bool known = dense_[key] || sparse_.erase(key) > 0;
    stored_ += known ? 0 : 1;
    dense_[key] = value;
    return;
  }
  stored_ += sparse_.count(key) ? 0 : 1;
  sparse_[key] = value;
}

PickleValuePtr PickleMemo::get(uint64_t key) const {
  if (key < dense_.size() && dense_[key]) return dense_[key];
  auto at = sparse_.find(key);
  return at == sparse_.end() ? nullptr : at->second;
}

Result<PickleValuePtr> PickleRules::reduce(PickleArena&, const PickleValue& callable, const PickleValue&) {
  return pickle_refusal("global " + callable.text + " cannot be called");
}

Result<PickleValuePtr> PickleRules::new_object(PickleArena&, const PickleValue& cls, const PickleValue&) {
  return pickle_refusal("NEWOBJ of " + cls.text + " is not allowed");
}

Status PickleRules::build(PickleValue& target, PickleValuePtr) {
  return pickle_refusal(std::string("BUILD of a ") + kind_name(target.kind) + " is not allowed");
}

Result<PickleValuePtr> PickleRules::persistent_load(PickleArena&, const PickleValue&) {
  return pickle_refusal("a persistent id is not allowed here");
}

Unpickler::Unpickler(const std::string& bytes, std::string file, std::string where, std::string load,
                     PickleRules& rules)
    : bytes_(bytes), file_(std::move(file)), where_(std::move(where)), load_(std::move(load)), rules_(rules) {}

Result<PickleValuePtr> Unpickler::run() {
  while (true) {
    if (arena_.size() > rules_.max_values()) {
      return fail("pickle builds more than " + std::to_string(rules_.max_values()) + " values");
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
    if (stack_.size() > kMaxPickleStackItems) return fail("pickle builds too many objects");
  }
}

Error Unpickler::fail(const std::string& what) const {
  return bad_input(file_, where_ + " offset " + std::to_string(op_at_) + ": " + what);
}

Result<uint64_t> Unpickler::read_uint(int bytes) {
  if (bytes_.size() - pos_ < static_cast<size_t>(bytes)) return fail("pickle truncated");
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes_[pos_ + i]);
  pos_ += static_cast<size_t>(bytes);
  return v;
}

Result<std::string> Unpickler::read_bytes(uint64_t n) {
  if (bytes_.size() - pos_ < n) return fail("pickle truncated");
  std::string out = bytes_.substr(pos_, n);
  pos_ += n;
  return out;
}

Result<std::string> Unpickler::read_line() {
  size_t nl = bytes_.find('\n', pos_);
  if (nl == std::string::npos) return fail("pickle truncated");
  std::string out = bytes_.substr(pos_, nl - pos_);
  pos_ = nl + 1;
  return out;
}

Result<PickleValuePtr> Unpickler::pop() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back())) return fail("stack underflow");
  PickleValuePtr v = stack_.back();
  stack_.pop_back();
  return v;
}

Result<std::vector<PickleValuePtr>> Unpickler::pop_to_mark() {
  if (marks_.empty()) return fail("no MARK on the stack");
  std::vector<PickleValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()), stack_.end());
  stack_.resize(marks_.back());
  marks_.pop_back();
  return items;
}

// A rule's value onto the stack, or its refusal with the file and the offset.
Status Unpickler::push(Result<PickleValuePtr> value) {
  if (!value) return fail(value.error().message);
  stack_.push_back(value.value());
  return Ok{};
}

Status Unpickler::push_string(uint64_t length) {
  auto text = read_bytes(length);
  if (!text) return text.error();
  auto v = arena_.make(PickleValue::Kind::kString);
  v->text = std::move(text).value();
  stack_.push_back(v);
  return Ok{};
}

Status Unpickler::push_int(int64_t i) {
  auto v = arena_.make(PickleValue::Kind::kInt);
  v->integer = i;
  stack_.push_back(v);
  return Ok{};
}

Status Unpickler::push_global(const std::string& module, const std::string& name) {
  const std::string full = module + "." + name;
  if (!rules_.allows_global(full)) return fail("global " + full + " is not allowed in " + load_ + " (nothing is executed)");
  auto v = arena_.make(PickleValue::Kind::kGlobal);
  v->text = full;
  stack_.push_back(v);
  return Ok{};
}

Status Unpickler::memo_put(uint64_t key) {
  if (stack_.empty()) return fail("memo put on an empty stack");
  memo_.put(key, stack_.back());
  return Ok{};
}

Status Unpickler::set_items(PickleValue& target, const std::vector<PickleValuePtr>& pairs) {
  if (target.kind != PickleValue::Kind::kDict) return fail(std::string("SETITEM(S) on a ") + kind_name(target.kind));
  if (pairs.size() % 2 != 0) return fail("SETITEMS with an odd number of items");
  for (size_t i = 0; i < pairs.size(); i += 2) {
    // Python dict semantics: a repeated key keeps its first position and takes the last value.
    if (pairs[i]->kind == PickleValue::Kind::kString) {
      if (!target.string_keys) target.string_keys = std::make_unique<std::unordered_map<std::string, size_t>>();
      auto [it, inserted] = target.string_keys->emplace(pairs[i]->text, target.dict.size());
      if (!inserted) {
        target.dict[it->second].second = pairs[i + 1];
        continue;
      }
    }
    target.dict.emplace_back(pairs[i], pairs[i + 1]);
  }
  return Ok{};
}

// APPEND, APPENDS
Status Unpickler::append(unsigned char op) {
  std::vector<PickleValuePtr> items;
  if (op == 'a') {
    auto item = pop();
    if (!item) return item.error();
    items.push_back(item.value());
  } else {
    auto popped = pop_to_mark();
    if (!popped) return popped.error();
    items = std::move(popped).value();
  }
  if (stack_.empty() || stack_.back()->kind != PickleValue::Kind::kList) return fail("APPEND(S) without a list");
  for (auto& item : items) stack_.back()->items.push_back(item);
  return Ok{};
}

// REDUCE, NEWOBJ: a global and a tuple of arguments, to the rules.
Status Unpickler::call(unsigned char op) {
  auto args = pop();
  if (!args) return args.error();
  auto callable = pop();
  if (!callable) return callable.error();
  const char* name = op == 'R' ? "REDUCE" : "NEWOBJ";
  if (callable.value()->kind != PickleValue::Kind::kGlobal || args.value()->kind != PickleValue::Kind::kTuple) {
    return fail(std::string(name) + " of something other than an allowed global and a tuple");
  }
  return push(op == 'R' ? rules_.reduce(arena_, *callable.value(), *args.value())
                        : rules_.new_object(arena_, *callable.value(), *args.value()));
}

Status Unpickler::execute(unsigned char op) {
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
    case ')': stack_.push_back(arena_.make(PickleValue::Kind::kTuple)); return Ok{};
    case ']': stack_.push_back(arena_.make(PickleValue::Kind::kList)); return Ok{};
    case '}': stack_.push_back(arena_.make(PickleValue::Kind::kDict)); return Ok{};
    case 'N': stack_.push_back(arena_.make(PickleValue::Kind::kNone)); return Ok{};
    case 0x88:
    case 0x89: {  // NEWTRUE, NEWFALSE
      auto v = arena_.make(PickleValue::Kind::kBool);
      v->boolean = op == 0x88;
      stack_.push_back(v);
      return Ok{};
    }
    case 'J': {  // BININT
      auto v = read_uint(4);
      if (!v) return v.error();
      return push_int(static_cast<int32_t>(static_cast<uint32_t>(v.value())));
    }
    case 'K':
    case 'M': {  // BININT1, BININT2
      auto v = read_uint(op == 'K' ? 1 : 2);
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
      auto v = arena_.make(PickleValue::Kind::kFloat);
      std::memcpy(&v->real, &bits, sizeof bits);
      stack_.push_back(v);
      return Ok{};
    }
    case 'X':
    case 0x8c:
    case 0x8d: {  // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
      auto n = read_uint(op == 'X' ? 4 : op == 0x8c ? 1 : 8);
      if (!n) return n.error();
      return push_string(n.value());
    }
    case 't': {  // TUPLE
      auto items = pop_to_mark();
      if (!items) return items.error();
      auto v = arena_.make(PickleValue::Kind::kTuple);
      v->items = std::move(items).value();
      stack_.push_back(v);
      return Ok{};
    }
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1..3
      const size_t n = op - 0x84;
      auto v = arena_.make(PickleValue::Kind::kTuple);
      v->items.resize(n);
      for (size_t i = n; i-- > 0;) {
        auto item = pop();
        if (!item) return item.error();
        v->items[i] = item.value();
      }
      stack_.push_back(v);
      return Ok{};
    }
    case 'q':
    case 'r': {  // BINPUT, LONG_BINPUT
      auto key = read_uint(op == 'q' ? 1 : 4);
      if (!key) return key.error();
      return memo_put(key.value());
    }
    case 0x94: return memo_put(memo_.size());  // MEMOIZE
    case 'h':
    case 'j': {  // BINGET, LONG_BINGET
      auto key = read_uint(op == 'h' ? 1 : 4);
      if (!key) return key.error();
      PickleValuePtr stored = memo_.get(key.value());
      if (!stored) return fail("memo key " + std::to_string(key.value()) + " was never stored");
      stack_.push_back(stored);
      return Ok{};
    }
    case 's': {  // SETITEM
      auto value = pop();
      if (!value) return value.error();
      auto key = pop();
      if (!key) return key.error();
      if (stack_.empty()) return fail("SETITEM without a dict");
      return set_items(*stack_.back(), {key.value(), value.value()});
    }
    case 'u': {  // SETITEMS
      auto items = pop_to_mark();
      if (!items) return items.error();
      if (stack_.empty()) return fail("SETITEMS without a dict");
      return set_items(*stack_.back(), items.value());
    }
    case 'a':
    case 'e': return append(op);
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
      if (module.value()->kind != PickleValue::Kind::kString || name.value()->kind != PickleValue::Kind::kString) {
        return fail("STACK_GLOBAL of non-strings");
      }
      return push_global(module.value()->text, name.value()->text);
    }
    case 'R':
    case 0x81: return call(op);  // REDUCE, NEWOBJ
    case 'Q': {  // BINPERSID
      auto pid = pop();
      if (!pid) return pid.error();
      return push(rules_.persistent_load(arena_, *pid.value()));
    }
    case 'b': {  // BUILD
      auto state = pop();
      if (!state) return state.error();
      if (stack_.empty()) return fail("BUILD without an object");
      auto built = rules_.build(*stack_.back(), state.value());
      if (!built) return fail(built.error().message);
      return Ok{};
    }
    default: {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", op);
      return fail(std::string("opcode ") + hex + " is not supported in " + load_);
    }
  }
}

}  // namespace recis_convert
