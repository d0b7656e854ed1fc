#include "recis_convert/metadata/key_order.h"

#include <algorithm>
#include <cstdint>

namespace recis_convert {

void for_each_in_key_order(const std::vector<FileResult>& files, TensorsOf which,
                           const std::function<void(const TensorInfo&, size_t, bool)>& visit) {
  auto by_name = [](const TensorInfo* a, const TensorInfo* b) { return a->name < b->name; };
  std::vector<std::vector<const TensorInfo*>> lists(files.size());
  for (size_t f = 0; f < files.size(); ++f) {
    auto& list = lists[f];
    for (const auto& t : files[f].kept) list.push_back(&t);
    if (which == TensorsOf::kKeptAndDropped) {
      for (const auto& t : files[f].dropped) list.push_back(&t);
    }
    if (!std::is_sorted(list.begin(), list.end(), by_name)) std::sort(list.begin(), list.end(), by_name);
  }
  // A min-heap of the files whose lists are not done, by their next name, then by file.
  std::vector<size_t> next(files.size(), 0);
  std::vector<size_t> heap;
  auto after = [&](size_t a, size_t b) {  // std heaps keep the greatest on top: "greater" makes it a min-heap
    const std::string& x = lists[a][next[a]]->name;
    const std::string& y = lists[b][next[b]]->name;
    return x != y ? x > y : a > b;
  };
  for (size_t f = 0; f < files.size(); ++f) {
    if (!lists[f].empty()) heap.push_back(f);
  }
  std::make_heap(heap.begin(), heap.end(), after);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), after);
    const size_t f = heap.back();
    const TensorInfo* t = lists[f][next[f]];
    const std::vector<TensorInfo>& kept = files[f].kept;
    visit(*t, f, t >= kept.data() && t < kept.data() + kept.size());  // kept and dropped are two arrays
    if (++next[f] < lists[f].size()) {
      std::push_heap(heap.begin(), heap.end(), after);
    } else {
      heap.pop_back();
    }
  }
}

KeyOrder order_by_key(const std::vector<FileResult>& files, const BlockCatalog& blocks) {
  std::vector<uint64_t> numbers(files.size());
  uint64_t written = 0;
  size_t total = 0;
  for (size_t f = 0; f < files.size(); ++f) {
    numbers[f] = written;
    written += files[f].written ? 1 : 0;
    total += files[f].kept.size();
  }
  KeyOrder out;
  out.kept.reserve(total);
  // The catalog is in key order too: walked alongside, no lookups. Block b is passed once a greater name comes;
  // if no tensor had its key and the index places it in a file, it is missing.
  size_t b = 0;
  size_t found = SIZE_MAX;  // the last block a tensor had
  auto pass = [&] {
    if (!out.missing_block && b != found && blocks[b].file != BlockCatalog::kNotIndexed) out.missing_block = b;
    ++b;
  };
  const std::string* last_kept = nullptr;
  for_each_in_key_order(files, TensorsOf::kKeptAndDropped, [&](const TensorInfo& t, size_t f, bool is_kept) {
    while (b < blocks.size() && blocks[b].key < t.name) pass();
    const bool in_catalog = b < blocks.size() && blocks[b].key == t.name;
    if (in_catalog) found = b;
    if (!is_kept) return;
    KeptTensor kept{&t, &files[f], numbers[f], in_catalog ? blocks[b].logical : std::string_view()};
    if (last_kept && *last_kept == t.name) {
      out.kept.back() = kept;
    } else {
      out.kept.push_back(kept);
    }
    last_kept = &t.name;
  });
  while (b < blocks.size()) pass();
  return out;
}

std::vector<KeptTensor> kept_in_key_order(const std::vector<FileResult>& files, const BlockCatalog& blocks) {
  return order_by_key(files, blocks).kept;
}

}  // namespace recis_convert
