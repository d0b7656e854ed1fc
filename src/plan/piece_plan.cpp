#include "recis_convert/plan/piece_plan.h"

#include <algorithm>
#include <numeric>

namespace recis_convert {

std::vector<PieceSpan> share_of_pieces(const std::vector<uint64_t>& piece_counts, int ranks, int rank) {
  const uint64_t total = std::accumulate(piece_counts.begin(), piece_counts.end(), uint64_t{0});
  const uint64_t n = static_cast<uint64_t>(std::max(ranks, 1)), r = static_cast<uint64_t>(rank);
  // rank r: pieces [r * total / n, (r + 1) * total / n) of the concatenation
  const uint64_t begin = total / n * r + std::min(r, total % n);
  const uint64_t end = begin + total / n + (r < total % n ? 1 : 0);
  std::vector<PieceSpan> out;
  uint64_t at = 0;  // the first piece of file i in the concatenation
  for (size_t i = 0; i < piece_counts.size() && at < end; at += piece_counts[i], ++i) {
    const uint64_t from = std::max(begin, at), to = std::min(end, at + piece_counts[i]);
    if (from < to) out.push_back(PieceSpan{i, from - at, to - from});
  }
  return out;
}

namespace {

size_t least_loaded(const std::vector<uint64_t>& load) {
  return static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());  // ties: the lowest rank
}

}  // namespace

WorkPlan plan_work(const std::vector<uint64_t>& file_sizes, int ranks, Balance balance, uint64_t piece_bytes) {
  const size_t n = static_cast<size_t>(std::max(ranks, 1));
  WorkPlan plan;
  plan.owners = assign_files(file_sizes, static_cast<int>(n), balance);
  plan.pieces.assign(file_sizes.size(), 1);
  plan.items.resize(n);
  const uint64_t total = std::accumulate(file_sizes.begin(), file_sizes.end(), uint64_t{0});
  if (n > 1 && piece_bytes > 0) {
    for (size_t f = 0; f < file_sizes.size(); ++f) {
      if (file_sizes[f] > total / n && file_sizes[f] > piece_bytes) {
        plan.pieces[f] = static_cast<uint32_t>(std::min<uint64_t>((file_sizes[f] + piece_bytes - 1) / piece_bytes, UINT32_MAX));
      }
    }
  }
  struct Item {
    WorkItem work;
    uint64_t bytes;
  };
  std::vector<Item> whole, pieces;
  for (size_t f = 0; f < file_sizes.size(); ++f) {
    const uint32_t count = plan.pieces[f];
    if (count == 1) {
      whole.push_back({WorkItem{f, 0, 1}, file_sizes[f]});
      continue;
    }
    for (uint32_t k = 0; k < count; ++k) {
      const uint64_t first = file_sizes[f] / count * k + std::min<uint64_t>(k, file_sizes[f] % count);
      const uint64_t next = file_sizes[f] / count * (k + 1) + std::min<uint64_t>(k + 1, file_sizes[f] % count);
      pieces.push_back({WorkItem{f, k, count}, next - first});
    }
  }
  std::vector<uint64_t> load(n, 0);
  auto deal = [&](std::vector<Item>& items, bool by_size) {
    if (by_size) {
      std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.bytes > b.bytes; });
    }
    for (const Item& item : items) {
      const size_t rank = least_loaded(load);
      load[rank] += item.bytes;
      if (item.work.piece == 0) plan.owners[item.work.file] = static_cast<int>(rank);
      plan.items[rank].push_back(item.work);
    }
  };
  if (balance == Balance::kSize) {  // every file and piece, largest first
    whole.insert(whole.end(), pieces.begin(), pieces.end());
    deal(whole, true);
  } else {  // the whole files keep their round-robin ranks; the pieces fill the ranks up
    for (const Item& item : whole) {
      load[static_cast<size_t>(plan.owners[item.work.file])] += item.bytes;
      plan.items[static_cast<size_t>(plan.owners[item.work.file])].push_back(item.work);
    }
    deal(pieces, false);
  }
  for (auto& items : plan.items) {  // whole files in listing order, then the pieces in file order
    std::stable_sort(items.begin(), items.end(), [](const WorkItem& a, const WorkItem& b) {
      if (a.whole() != b.whole()) return a.whole();
      return a.file != b.file ? a.file < b.file : a.piece < b.piece;
    });
  }
  return plan;
}

std::vector<bool> WorkPlan::files_read_by(int rank) const {
  std::vector<bool> out(owners.size(), false);
  for (const WorkItem& item : items[static_cast<size_t>(rank)]) out[item.file] = true;
  return out;
}

std::vector<size_t> WorkPlan::whole_files_of_rank(int rank) const {
  std::vector<size_t> out;
  for (const WorkItem& item : items[static_cast<size_t>(rank)]) {
    if (item.whole()) out.push_back(item.file);
  }
  return out;
}

std::vector<WorkItem> WorkPlan::pieces_of_rank(int rank) const {
  std::vector<WorkItem> out;
  for (const WorkItem& item : items[static_cast<size_t>(rank)]) {
    if (!item.whole()) out.push_back(item);
  }
  return out;
}

ByteWindow piece_window(uint64_t bytes, uint64_t piece_bytes, uint32_t piece, uint32_t pieces) {
  const uint64_t units = (bytes + piece_bytes - 1) / piece_bytes;  // checksum pieces of the output
  auto unit_start = [&](uint64_t k) { return units / pieces * k + std::min<uint64_t>(k, units % pieces); };
  return ByteWindow{std::min(bytes, unit_start(piece) * piece_bytes), std::min(bytes, unit_start(piece + 1) * piece_bytes)};
}

}  // namespace recis_convert
