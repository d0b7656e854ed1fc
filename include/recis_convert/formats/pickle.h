// A pickle interpreter that executes nothing: it reads the opcodes of protocols 2 to 5 that torch's writers use and
// builds plain values. What a kind of file may name and build is its PickleRules: the globals it allows, and what
// REDUCE, NEWOBJ, BUILD and BINPERSID make of them. Every other global or opcode is an error naming the file, the
// global or opcode, and its offset in the pickle. Readers: torch_archive.cpp (torch.save and TorchScript data.pkl),
// dcp_metadata.cpp (a Distributed Checkpoint's .metadata).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "recis_convert/common/error.h"

namespace recis_convert {

// The largest pickle read whole.
inline constexpr uint64_t kMaxPickleBytes = 256ull << 20;
// Every value a pickle builds (a tensor of a state dict costs about 25: its storage tuple, size and stride tuples,
// ints...), so 1M is 40,000 tensors, and caps the reader at ~150 MiB. A kind of file may set its own cap
// (PickleRules::max_values).
inline constexpr size_t kMaxPickleValues = 1'000'000;
inline constexpr size_t kMaxPickleStackItems = 10'000'000;

// Values are owned flat by the interpreter's arena and point to each other with plain pointers. So nothing is ever
// freed or walked recursively: a list nested 200,000 deep (EMPTY_LIST/APPEND) or one that holds itself (memo) costs
// one arena slot per value and no stack, and no nesting-depth limit is needed.
struct PickleValue;
using PickleValuePtr = PickleValue*;

struct PickleValue {
  // kObject: what a rule built from an allowed global (`text` names it; `items` its arguments; `dict` its
  // attributes, `state` a BUILD state that is not a dict).
  enum class Kind : uint8_t { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kObject };
  Kind kind = Kind::kNone;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0;
  std::string text;                                           // str; global and object as "module.name"
  std::vector<PickleValuePtr> items;                          // tuple, list; an object's arguments
  std::vector<std::pair<PickleValuePtr, PickleValuePtr>> dict;  // insertion order; an object's attributes
  // The dict position of each str key (repeated keys keep their first), made with the first one: most values are
  // no dict, and a value's size is what a large pickle costs (~120 bytes).
  std::unique_ptr<std::unordered_map<std::string, size_t>> string_keys;
  PickleValuePtr state = nullptr;                             // an object's BUILD state, when not a dict
};

const char* kind_name(PickleValue::Kind kind);

// A dict's value under a str key, or nullptr.
PickleValuePtr dict_value(const PickleValue& dict, const std::string& key);

class PickleArena {
 public:
  PickleValuePtr make(PickleValue::Kind kind);
  size_t size() const { return values_.size(); }

 private:
  std::deque<PickleValue> values_;  // in place, one block per 4 KiB or so; a deque never moves what it holds
};

// What one kind of file may hold. Nothing is ever called: each rule builds a value from checked arguments, or
// refuses with a message (the interpreter adds the file and the offset). The defaults refuse.
class PickleRules {
 public:
  virtual ~PickleRules() = default;
  virtual bool allows_global(const std::string& name) const = 0;
  // How many values a pickle of this kind may build.
  virtual size_t max_values() const { return kMaxPickleValues; }
  // REDUCE: `callable` an allowed global, `args` a tuple.
  virtual Result<PickleValuePtr> reduce(PickleArena& arena, const PickleValue& callable, const PickleValue& args);
  // NEWOBJ: `cls` an allowed global, `args` a tuple.
  virtual Result<PickleValuePtr> new_object(PickleArena& arena, const PickleValue& cls, const PickleValue& args);
  // BUILD of `target` (the value under the state) with `state`.
  virtual Status build(PickleValue& target, PickleValuePtr state);
  // BINPERSID.
  virtual Result<PickleValuePtr> persistent_load(PickleArena& arena, const PickleValue& pid);
};

// The memo: a pickler numbers what it memoizes 0, 1, 2... (MEMOIZE, and BINPUT as Python writes it), so keys are
// kept in a vector (8 bytes each, where a hash map costs ~40: a large .metadata memoizes millions); a key far past
// the others (a crafted pickle) goes to a map instead, so no key makes the vector large.
class PickleMemo {
 public:
  void put(uint64_t key, PickleValuePtr value);
  PickleValuePtr get(uint64_t key) const;  // nullptr: never stored
  size_t size() const { return stored_; }   // distinct keys, as len(memo)

 private:
  static constexpr uint64_t kMaxDenseGap = 1024;
  std::vector<PickleValuePtr> dense_;
  std::unordered_map<uint64_t, PickleValuePtr> sparse_;
  size_t stored_ = 0;
};

// The interpreter over `bytes` (read only while run() runs) under `rules`. Errors name `file`, the pickle `where`
// it lies ("data.pkl") and the kind of `load` ("a weights-only load"). The values live as long as it does.
class Unpickler {
 public:
  Unpickler(const std::string& bytes, std::string file, std::string where, std::string load, PickleRules& rules);
  Result<PickleValuePtr> run();

 private:
  Error fail(const std::string& what) const;
  Result<uint64_t> read_uint(int bytes);
  Result<std::string> read_bytes(uint64_t n);
  Result<std::string> read_line();
  Result<PickleValuePtr> pop();
  Result<std::vector<PickleValuePtr>> pop_to_mark();
  Status push(Result<PickleValuePtr> value);
  Status push_string(uint64_t length);
  Status push_int(int64_t i);
  Status push_global(const std::string& module, const std::string& name);
  Status memo_put(uint64_t key);
  Status set_items(PickleValue& target, const std::vector<PickleValuePtr>& pairs);
  Status append(unsigned char op);
  Status call(unsigned char op);
  Status execute(unsigned char op);

  const std::string& bytes_;
  std::string file_, where_, load_;
  PickleRules& rules_;
  size_t pos_ = 0;
  size_t op_at_ = 0;
  PickleArena arena_;
  std::vector<PickleValuePtr> stack_;
  std::vector<size_t> marks_;
  PickleMemo memo_;
};

// A rule's refusal (the interpreter names the file and offset).
Error pickle_refusal(const std::string& what);

}  // namespace recis_convert
