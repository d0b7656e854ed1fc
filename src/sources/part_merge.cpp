#include "recis_convert/sources/part_merge.h"

#include <algorithm>
#include <queue>
#include <random>
#include <utility>

#include "recis_convert/common/file_io.h"
#include "recis_convert/sources/id_index.h"

namespace recis_convert {
namespace {

constexpr uint64_t kIdChunk = 131072;           // base ids read at a time (1 MiB)
constexpr uint64_t kJoinBytesPerId = 128;       // a delta id's share of a join: its entry (40 bytes), its slots in
                                                // the table (32 to 64), the filter's bits, with room
constexpr uint64_t kSpillBufferBytes = 1u << 20;  // the buffers of a spilled join's class writers or run readers
constexpr size_t kMinBufferRecords = 64;

using Entry = DeltaRows::Entry;
using Location = DeltaRows::Location;

// The deltas' ids of a part's slice (or of one class of them), each once, to look base ids up in: a table of their
// own (a part's share of the deltas, not the table's: smaller, and often in cache), and a one-hash Bloom filter of
// 16 bits per id (within L2 for a part's usual share): most base ids are in no delta, and the filter turns them
// away without touching the table.
class DeltaIds {
 public:
  explicit DeltaIds(const std::vector<Entry>& entries) : index_(entries.size()), in_base_(entries.size()) {
    while (filter_bits_ < 16 * entries.size()) filter_bits_ *= 2;
    filter_.resize(filter_bits_ / 64);
    for (size_t i = 0; i < entries.size(); ++i) {
      index_.insert(entries[i].id, static_cast<uint32_t>(i));
      filter_[bit(entries[i].id) / 64] |= uint64_t{1} << (bit(entries[i].id) % 64);
    }
  }

  // Looks up base ids[0..n): `hit(r, i)` for each that is entry i, in order.
  template <class Hit>
  void probe(const int64_t* ids, size_t n, const Hit& hit) {
    // The ids the filter lets through, then looked up with their slots fetched ahead. Without a branch: the
    // filter's answer is as good as random, and a mispredicted branch per id cost more than the test.
    candidates_.resize(n);
    size_t count = 0;
    for (size_t r = 0; r < n; ++r) {
      const size_t b = bit(ids[r]);
      candidates_[count] = static_cast<uint32_t>(r);
      count += filter_[b / 64] >> (b % 64) & 1;
    }
    candidates_.resize(count);
    constexpr size_t kAhead = 16;  // lookups in flight: the table of a part's share is out of cache
    for (size_t k = 0; k < candidates_.size(); ++k) {
      if (k + kAhead < candidates_.size()) index_.prefetch(ids[candidates_[k + kAhead]]);
      const uint32_t r = candidates_[k];
      const uint32_t i = index_.find(ids[r]);
      if (i == IdIndex::kNone) continue;
      in_base_[i] = true;
      hit(r, i);
    }
  }
  // Whether entry i was found among the base's ids.
  bool in_base(size_t i) const { return in_base_[i]; }

 private:
  size_t bit(int64_t id) const { return static_cast<size_t>(IdIndex::mix(id) >> 32) & (filter_bits_ - 1); }
  IdIndex index_;
  size_t filter_bits_ = 1024;
  std::vector<uint64_t> filter_;
  std::vector<bool> in_base_;
  std::vector<uint32_t> candidates_;
};

// Every chunk of the base part's ids, in row order: visit(ids, n, first_row); `verifier` (may be null) sees them.
template <class Visit>
Status for_each_base_chunk(const RowColumn& ids, int fd, InputVerifier* verifier, const Visit& visit) {
  std::vector<int64_t> chunk;
  for (uint64_t first = 0; first < ids.rows(); first += kIdChunk) {
    const uint64_t n = std::min(kIdChunk, ids.rows() - first);
    chunk.resize(n);
    auto read = read_exact(fd, ids.offset + first * 8, n * 8, chunk.data(), ids.path, "tensor " + quoted_name(ids.key));
    if (read && verifier) read = verifier->saw(ids.path, fd, ids.offset + first * 8, chunk.data(), n * 8);
    if (!read) return read;
    auto visited = visit(chunk.data(), static_cast<size_t>(n), first);
    if (!visited) return visited;
  }
  return Ok{};
}

size_t buffer_records(uint64_t streams) {
  return std::max<size_t>(kMinBufferRecords, kSpillBufferBytes / SpillFile::kRecordBytes / std::max<uint64_t>(streams, 1));
}

// A join small enough for memory (the usual case: a delta changes a few rows of a part).
Result<std::shared_ptr<const PartMerge>> join_in_memory(const RowColumn& ids, int fd, const DeltaRows& deltas,
                                                        const std::string& table, const Slice& slice,
                                                        InputVerifier* verifier) {
  auto in_slice = deltas.in_slice(table, slice);  // the deltas' ids this part can hold, read now
  if (!in_slice) return in_slice.error();
  const std::vector<Entry>& entries = in_slice.value();
  std::vector<PartMerge::Replacement> replaced;
  DeltaIds lookup(entries);
  if (!entries.empty()) {
    auto joined = for_each_base_chunk(ids, fd, verifier, [&](const int64_t* chunk, size_t n, uint64_t first) {
      lookup.probe(chunk, n, [&](uint32_t r, uint32_t i) { replaced.push_back({first + r, entries[i].at}); });
      return Status(Ok{});
    });
    if (!joined) return joined.error();
  }
  std::vector<Location> added;  // the ids it gains: those of its slice the base lacks, in order of first appearance
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!lookup.in_base(i)) added.push_back(entries[i].at);
  }
  replaced.shrink_to_fit();  // it may be kept a while (merged_export.h)
  added.shrink_to_fit();
  return std::make_shared<const PartMerge>(ids.rows(), std::move(replaced), std::move(added));
}

// Which of `classes` an id's class is: from the high half of a mix of the id (IdIndex and the filter use the low
// bits), seeded once per process so that no input can put its ids in one class.
uint64_t class_of(int64_t id, uint64_t classes) {
  static const uint64_t seed = [] {
    std::random_device random;
    return (static_cast<uint64_t>(random()) << 32) ^ random();
  }();
  return ((IdIndex::mix(static_cast<int64_t>(static_cast<uint64_t>(id) ^ seed)) >> 32) * classes) >> 32;
}

// Runs of records sorted by field `a`, at [begin, end) of one spill file, merged into one sorted stream.
class RunMerge {
 public:
  RunMerge(const SpillFile& file, const std::vector<std::pair<uint64_t, uint64_t>>& runs) {
    const size_t buffer = buffer_records(runs.size());
    for (const auto& [begin, end] : runs) {
      if (begin < end) readers_.emplace_back(file, begin, end, buffer);
    }
  }
  // Every record in order of `a`, to `take`.
  template <class Take>
  Status run(const Take& take) {
    using Head = std::pair<uint64_t, size_t>;  // a run's next key, and the run
    std::priority_queue<Head, std::vector<Head>, std::greater<Head>> heads;
    for (size_t k = 0; k < readers_.size(); ++k) {
      auto first = readers_[k].peek();
      if (!first) return first.error();
      heads.push({first.value().a, k});
    }
    while (!heads.empty()) {
      const size_t k = heads.top().second;
      heads.pop();
      auto record = readers_[k].next();
      if (!record) return record.error();
      auto taken = take(record.value());
      if (!taken) return taken;
      if (readers_[k].done()) continue;
      auto next = readers_[k].peek();
      if (!next) return next.error();
      heads.push({next.value().a, k});
    }
    return Ok{};
  }

 private:
  std::vector<SpillReader> readers_;
};

}  // namespace

// The grace hash join, for a part whose deltas' ids would not fit kJoinBytes (part_merge.h).
class PartJoin {
 public:
  PartJoin(const RowColumn& ids, int fd, const DeltaRows& deltas, const std::string& table, const Slice& slice,
           uint64_t classes, InputVerifier* verifier)
      : ids_(ids), fd_(fd), deltas_(deltas), table_(table), slice_(slice), classes_(classes), verifier_(verifier) {
    uint64_t ordinal = 0;  // each delta row's place in the order of appearance (a run of gained rows sorts by it)
    for (uint32_t p = 0; p < deltas.part_count(); ++p) {
      part_start_.push_back(ordinal);
      ordinal += deltas.part(p).slots.at("id").rows();
    }
  }

  Result<std::shared_ptr<const PartMerge>> run(const std::string& spill_dir) {
    auto deltas = SpillFile::create(spill_dir), base = SpillFile::create(spill_dir);
    auto replaced = SpillFile::create(spill_dir), added = SpillFile::create(spill_dir);
    auto merged = SpillFile::create(spill_dir);
    for (const auto* made : {&deltas, &base, &replaced, &added, &merged}) {
      if (!*made) return made->error();
    }
    auto classed = write_classes(deltas.value(), base.value());
    if (!classed) return classed.error();
    for (uint64_t k = 0; k < classes_; ++k) {
      auto joined = join_class(k, deltas.value(), base.value(), replaced.value(), added.value());
      if (!joined) return joined.error();
    }
    auto out = std::make_shared<PartMerge>();
    out->base_rows_ = ids_.rows();
    auto written = merge_runs(replaced.value(), added.value(), merged.value(), *out);
    if (!written) return written.error();
    out->spill_ = std::make_shared<const SpillFile>(std::move(merged).value());
    return std::shared_ptr<const PartMerge>(std::move(out));
  }

 private:
  // 1. The deltas' ids (id, part, row) and the base's (id, row), each class's together, in their order: counted,
  // then written at their class's place.
  Status write_classes(const SpillFile& deltas, const SpillFile& base) {
    std::vector<uint64_t> delta_count(classes_), base_count(classes_);
    auto counted = deltas_.for_each_in_slice(table_, slice_, [&](int64_t id, const Location&) {
      ++delta_count[class_of(id, classes_)];
      return Status(Ok{});
    });
    if (!counted) return counted;
    counted = for_each_base_chunk(ids_, fd_, verifier_, [&](const int64_t* chunk, size_t n, uint64_t) {
      for (size_t r = 0; r < n; ++r) ++base_count[class_of(chunk[r], classes_)];
      return Status(Ok{});
    });
    if (!counted) return counted;
    delta_class_.assign(1, 0);
    base_class_.assign(1, 0);
    for (uint64_t k = 0; k < classes_; ++k) {
      delta_class_.push_back(delta_class_.back() + delta_count[k]);
      base_class_.push_back(base_class_.back() + base_count[k]);
    }
    std::vector<SpillWriter> to_deltas, to_base;
    for (uint64_t k = 0; k < classes_; ++k) {
      to_deltas.emplace_back(deltas, delta_class_[k], buffer_records(classes_));
      to_base.emplace_back(base, base_class_[k], buffer_records(classes_));
    }
    auto written = deltas_.for_each_in_slice(table_, slice_, [&](int64_t id, const Location& at) {
      return to_deltas[class_of(id, classes_)].add(SpillRecord{static_cast<uint64_t>(id), at.part, at.row});
    });
    if (!written) return written;
    written = for_each_base_chunk(ids_, fd_, verifier_, [&](const int64_t* chunk, size_t n, uint64_t first) {
      for (size_t r = 0; r < n; ++r) {
        auto added = to_base[class_of(chunk[r], classes_)].add(SpillRecord{static_cast<uint64_t>(chunk[r]), first + r, 0});
        if (!added) return added;
      }
      return Status(Ok{});
    });
    if (!written) return written;
    for (uint64_t k = 0; k < classes_; ++k) {
      auto flushed = to_deltas[k].flush();
      if (flushed) flushed = to_base[k].flush();
      if (!flushed) return flushed;
      // a file that changed between the two reads does not give the counts twice
      if (to_deltas[k].end() != delta_class_[k + 1] || to_base[k].end() != base_class_[k + 1]) {
        return bad_input(ids_.path, "changed while it was read (the ids of " + quoted_name(ids_.key) +
                                        " or of the deltas' parts of its slice)");
      }
    }
    return Ok{};
  }

  // 2. One class joined in memory: its replacements, a run sorted by base row, and its gained rows, a run sorted
  // by where each first appeared.
  Status join_class(uint64_t k, const SpillFile& deltas, const SpillFile& base, const SpillFile& replaced,
                    const SpillFile& added) {
    std::vector<Entry> entries;
    entries.reserve(delta_class_[k + 1] - delta_class_[k]);
    SpillReader from_deltas(deltas, delta_class_[k], delta_class_[k + 1], buffer_records(1));
    while (!from_deltas.done()) {
      auto r = from_deltas.next();
      if (!r) return r.error();
      const Location at{static_cast<uint32_t>(r.value().b), r.value().c};
      entries.push_back(Entry{static_cast<int64_t>(r.value().a), at, at});
    }
    DeltaRows::keep_first_of_each(entries);
    DeltaIds lookup(entries);
    SpillWriter to_replaced(replaced, replaced_end_, buffer_records(1));
    SpillReader from_base(base, base_class_[k], base_class_[k + 1], buffer_records(1));
    std::vector<int64_t> chunk;
    std::vector<uint64_t> rows;
    Status status = Ok{};
    while (!from_base.done() && status) {
      chunk.clear();
      rows.clear();
      while (!from_base.done() && chunk.size() < kIdChunk) {
        auto r = from_base.next();
        if (!r) return r.error();
        chunk.push_back(static_cast<int64_t>(r.value().a));
        rows.push_back(r.value().b);
      }
      lookup.probe(chunk.data(), chunk.size(), [&](uint32_t r, uint32_t i) {
        if (status) status = to_replaced.add(SpillRecord{rows[r], entries[i].at.part, entries[i].at.row});
      });
    }
    if (status) status = to_replaced.flush();
    if (!status) return status;
    replaced_runs_.emplace_back(replaced_end_, to_replaced.end());
    replaced_end_ = to_replaced.end();
    SpillWriter to_added(added, added_end_, buffer_records(1));
    for (size_t i = 0; i < entries.size(); ++i) {
      if (lookup.in_base(i)) continue;
      const Entry& e = entries[i];
      auto put = to_added.add(SpillRecord{part_start_[e.first.part] + e.first.row, e.at.part, e.at.row});
      if (!put) return put;
    }
    auto flushed = to_added.flush();
    if (!flushed) return flushed;
    added_runs_.emplace_back(added_end_, to_added.end());
    added_end_ = to_added.end();
    return Ok{};
  }

  // 3. Every class's runs merged: the replacements (row, part, delta row) in row order from record 0, then the
  // gained rows (part, delta row) in order of first appearance.
  Status merge_runs(const SpillFile& replaced, const SpillFile& added, const SpillFile& merged, PartMerge& out) {
    SpillWriter to_merged(merged, 0, buffer_records(1));
    uint64_t count = 0;
    auto taken = RunMerge(replaced, replaced_runs_).run([&](const SpillRecord& r) {
      if (count++ % PartMerge::kIndexStride == 0) out.replaced_index_.push_back(r.a);
      return to_merged.add(r);
    });
    if (!taken) return taken;
    out.replaced_count_ = count;
    taken = RunMerge(added, added_runs_).run([&](const SpillRecord& r) {
      ++out.added_count_;
      return to_merged.add(SpillRecord{r.b, r.c, 0});
    });
    if (!taken) return taken;
    return to_merged.flush();
  }

  const RowColumn& ids_;
  int fd_;
  const DeltaRows& deltas_;
  const std::string& table_;
  Slice slice_;
  uint64_t classes_;
  InputVerifier* verifier_;
  std::vector<uint64_t> part_start_;
  std::vector<uint64_t> delta_class_, base_class_;  // each class's first record, and the end
  std::vector<std::pair<uint64_t, uint64_t>> replaced_runs_, added_runs_;
  uint64_t replaced_end_ = 0, added_end_ = 0;
};

uint64_t PartMerge::memory_bytes() const {
  return sizeof(PartMerge) + replaced_.capacity() * sizeof(Replacement) + added_.capacity() * sizeof(Location) +
         replaced_index_.capacity() * sizeof(uint64_t);
}

Status PartMerge::replaced_between(uint64_t first, uint64_t end, std::vector<Replacement>& out) const {
  out.clear();
  if (!spill_) {
    auto r = std::lower_bound(replaced_.begin(), replaced_.end(), first,
                              [](const Replacement& x, uint64_t row) { return x.row < row; });
    for (; r != replaced_.end() && r->row < end; ++r) out.push_back(*r);
    return Ok{};
  }
  // from the last indexed replacement before `first`
  const auto after = std::upper_bound(replaced_index_.begin(), replaced_index_.end(), first);
  const uint64_t start = after == replaced_index_.begin() ? 0 : (after - replaced_index_.begin() - 1) * kIndexStride;
  SpillReader reader(*spill_, start, replaced_count_, kIndexStride);
  while (!reader.done()) {
    auto r = reader.next();
    if (!r) return r.error();
    if (r.value().a >= end) break;
    if (r.value().a >= first) out.push_back({r.value().a, Location{static_cast<uint32_t>(r.value().b), r.value().c}});
  }
  return Ok{};
}

Status PartMerge::added_between(uint64_t first, uint64_t end, std::vector<Location>& out) const {
  out.clear();
  end = std::min(end, added_count_);
  if (first >= end) return Ok{};
  if (!spill_) {
    out.assign(added_.begin() + static_cast<std::ptrdiff_t>(first), added_.begin() + static_cast<std::ptrdiff_t>(end));
    return Ok{};
  }
  std::vector<SpillRecord> records(end - first);
  auto read = spill_->read(replaced_count_ + first, records.size(), records.data());
  if (!read) return read;
  for (const SpillRecord& r : records) out.push_back(Location{static_cast<uint32_t>(r.a), r.b});
  return Ok{};
}

Result<std::shared_ptr<const PartMerge>> join_part(const RowColumn& ids, int fd, const DeltaRows& deltas,
                                                   const std::string& table, const Slice& slice,
                                                   const JoinSettings& settings) {
  const uint64_t bound = deltas.rows_meeting(table, slice);  // at least the ids the join holds
  const uint64_t budget = std::max<uint64_t>(settings.join_bytes, kJoinBytesPerId);
  if (bound * kJoinBytesPerId <= budget) return join_in_memory(ids, fd, deltas, table, slice, settings.verifier);
  const uint64_t classes = (bound * kJoinBytesPerId + budget - 1) / budget;
  return PartJoin(ids, fd, deltas, table, slice, classes, settings.verifier).run(settings.spill_dir);
}

}  // namespace recis_convert
