// The interpreter (formats/pickle.h) on hand-assembled pickles: values, the memo, and what the rules refuse.
#include "recis_convert/formats/pickle.h"

#include <gtest/gtest.h>

namespace recis_convert {
namespace {

// Allows one global, `m.f`, which REDUCE turns into the int 7; everything else is the defaults' refusal.
class SevenRules final : public PickleRules {
 public:
  bool allows_global(const std::string& name) const override { return name == "m.f"; }
  Result<PickleValuePtr> reduce(PickleArena& arena, const PickleValue& callable, const PickleValue& args) override {
    if (!args.items.empty()) return PickleRules::reduce(arena, callable, args);
    auto v = arena.make(PickleValue::Kind::kInt);
    v->integer = 7;
    return v;
  }
};

struct Interpreted {
  std::string bytes;
  SevenRules rules;
  Unpickler unpickler;
  explicit Interpreted(std::string b) : bytes(std::move(b)), unpickler(bytes, "f.pkl", "data.pkl", "a test load", rules) {}
};

TEST(PickleTest, BuildsDictsListsAndIntsWithTheMemo) {
  // {"a": [1, -2], "b": <memo 0: the list>} under protocol 4 with a FRAME; -2 as LONG1
  Interpreted r(std::string("\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00}(\x8c\x01" "a]\x94(K\x01\x8a\x01\xfe" "e\x8c\x01" "bh\x00u.",
                    32));
  auto root = r.unpickler.run();
  ASSERT_TRUE(root) << root.error().describe();
  const PickleValue& d = *root.value();
  ASSERT_EQ(d.kind, PickleValue::Kind::kDict);
  const PickleValue* a = dict_value(d, "a");
  ASSERT_TRUE(a && a->kind == PickleValue::Kind::kList && a->items.size() == 2);
  EXPECT_EQ(a->items[0]->integer, 1);
  EXPECT_EQ(a->items[1]->integer, -2);
  EXPECT_EQ(dict_value(d, "b"), a);  // the memo gives the same value, not a copy
}

// Keys come 0, 1, 2... from a pickler, but a crafted pickle may store any key: one far ahead is kept apart (no
// vector that large), found again, and counted once when the vector reaches it; len(memo) counts distinct keys.
TEST(PickleTest, TheMemoTakesAnyKeyAndCountsEachOnce) {
  PickleArena arena;
  PickleValuePtr a = arena.make(PickleValue::Kind::kNone), b = arena.make(PickleValue::Kind::kNone);
  PickleMemo memo;
  memo.put(0, a);
  memo.put(4'000'000'000ull, b);
  memo.put(1500, b);  // ahead of the vector's end, within reach of a later one
  EXPECT_EQ(memo.size(), 3u);
  EXPECT_EQ(memo.get(0), a);
  EXPECT_EQ(memo.get(4'000'000'000ull), b);
  EXPECT_EQ(memo.get(1500), b);
  EXPECT_EQ(memo.get(7), nullptr);
  for (uint64_t k = 1; k < 1600; ++k) memo.put(k, a);  // the vector grows past 1500
  EXPECT_EQ(memo.size(), 1601u);
  EXPECT_EQ(memo.get(1500), a);
}

// A kind of file sets its own cap on the values a pickle builds.
TEST(PickleTest, TheRulesCapTheValuesAPickleBuilds) {
  class FewValues final : public PickleRules {
   public:
    bool allows_global(const std::string&) const override { return false; }
    size_t max_values() const override { return 3; }
  } rules;
  const std::string list("](K\x01K\x02K\x03K\x04e.", 12);  // [1, 2, 3, 4]: five values
  Unpickler unpickler(list, "f.pkl", "data.pkl", "a test load", rules);
  auto root = unpickler.run();
  ASSERT_FALSE(root);
  EXPECT_NE(root.error().describe().find("pickle builds more than 3 values"), std::string::npos)
      << root.error().describe();
}

TEST(PickleTest, ARepeatedKeyKeepsItsPlaceAndTakesTheLastValue) {
  Interpreted r(std::string("}(\x8c\x01kK\x01\x8c\x01jK\x02\x8c\x01kK\x03u.", 19));
  auto root = r.unpickler.run();
  ASSERT_TRUE(root) << root.error().describe();
  ASSERT_EQ(root.value()->dict.size(), 2u);
  EXPECT_EQ(root.value()->dict[0].first->text, "k");
  EXPECT_EQ(dict_value(*root.value(), "k")->integer, 3);
}

TEST(PickleTest, AnAllowedGlobalIsBuiltByItsRule) {
  Interpreted r("cm\nf\n)R.");
  auto root = r.unpickler.run();
  ASSERT_TRUE(root) << root.error().describe();
  EXPECT_EQ(root.value()->integer, 7);
}

TEST(PickleTest, AnyOtherGlobalIsRefusedNamingItAndItsOffset) {
  Interpreted r("K\x01" "cposix\nsystem\n.");
  auto root = r.unpickler.run();
  ASSERT_FALSE(root);
  EXPECT_EQ(root.error().describe(),
            "f.pkl: data.pkl offset 2: global posix.system is not allowed in a test load (nothing is executed)");
}

TEST(PickleTest, WhatTheRulesDoNotBuildIsRefused) {
  Interpreted call_with_args("cm\nf\nK\x01\x85R.");
  auto called = call_with_args.unpickler.run();
  ASSERT_FALSE(called);
  EXPECT_NE(called.error().describe().find("global m.f cannot be called"), std::string::npos);
  Interpreted newobj("cm\nf\n)\x81.");
  auto created = newobj.unpickler.run();
  ASSERT_FALSE(created);
  EXPECT_NE(created.error().describe().find("NEWOBJ of m.f is not allowed"), std::string::npos);
  Interpreted build("}}b.");
  auto built = build.unpickler.run();
  ASSERT_FALSE(built);
  EXPECT_NE(built.error().describe().find("BUILD of a dict is not allowed"), std::string::npos);
}

TEST(PickleTest, CutAndMalformedPicklesAreRefused) {
  for (const char* bytes : {"\x8c\x05" "ab", "K", "}", "K\x01K\x02.", "I1\n."}) {
    Interpreted r(bytes);
    EXPECT_FALSE(r.unpickler.run()) << bytes;
  }
}

}  // namespace
}  // namespace recis_convert
