#include "recis_convert/pipeline/eviction_stage.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "recis_convert/common/file_io.h"
#include "recis_convert/mpi/job_messages.h"
#include "recis_convert/transforms/row_selection.h"

namespace recis_convert {
namespace {

// Step 1 on one rank: the decision columns of its files, from their checked headers.
RankColumns find_columns(const EvictionSettings& settings, const CheckpointListing& listing,
                         const std::vector<size_t>& mine) {
  RankColumns out;
  for (size_t index : mine) {
    const DataFile& file = listing.files[index];
    const std::string path = listing.ckpt_dir + "/" + file.name;
    auto opened = open_input_file(path);
    if (!opened) {
      out.error = opened.error();
      return out;
    }
    FileDescriptor fd = std::move(opened).value();
    auto header = read_safetensors_header(fd.get(), file.size, path);
    if (!header) {
      out.error = header.error();
      return out;
    }
    std::vector<KeyClass> keys;
    for (const TensorInfo& t : header.value().tensors) {
      auto key = classify_key(t.name, listing.blocks);
      keys.push_back(key ? std::move(*key) : KeyClass{});  // unclassifiable keys fail the stream with their message
    }
    auto found = decision_columns_in(header.value(), keys, path, settings.by_step(), settings.by_norm());
    for (auto& c : found) out.columns.push_back(std::move(c));
  }
  return out;
}

// Step 3 on one rank: the kept rows of the parts it counts.
RankCounts count_parts(const std::vector<PlannedPart>& parts) {
  RankCounts out;
  for (const PlannedPart& p : parts) {
    auto selector = RowSelector::open(p.decision);
    if (!selector) {
      out.error = selector.error();
      return out;
    }
    std::optional<KeptRowBitmapWriter> record;
    if (!p.kept_rows_file.empty()) {
      auto created = KeptRowBitmapWriter::create(p.kept_rows_file);
      if (!created) {
        out.error = created.error();
        return out;
      }
      record.emplace(std::move(created).value());
    }
    auto kept = selector.value().count_kept(record ? &*record : nullptr);
    if (!kept) {
      out.error = kept.error();
      return out;
    }
    out.counts.push_back(PartCount{p.part, selector.value().rows(), kept.value()});
  }
  return out;
}

}  // namespace

Result<EvictionCounts> count_evictions(const EvictionSettings& settings, const CheckpointListing& listing,
                                       const std::vector<size_t>& mine, const std::vector<int>& owners,
                                       const std::string& staging_dir, Comm& comm) {
  // 1. find
  auto found = gather_to_root(comm, find_columns(settings, listing, mine), "decision-columns");
  // 2. plan, and each rank's share of the counting (or the error, to every rank)
  std::vector<std::vector<PlannedPart>> shares;
  std::map<PartId, PlannedPart> planned;  // rank 0: every part's decision and bitmap, for the routing in step 4
  std::optional<Error> failure;
  EvictionCounts out;
  out.kept_rows_dir = kept_row_bitmap_dir(staging_dir);
  if (comm.is_root()) {
    failure = first_error(found);
    if (!failure && !out.kept_rows_dir.empty() && ::mkdir(out.kept_rows_dir.c_str(), 0755) != 0) {
      failure = output_error(out.kept_rows_dir, std::string("cannot create: ") + std::strerror(errno));
    }
    if (!failure) {
      std::vector<LocatedColumn> columns;
      for (auto& report : found.value()) {
        for (auto& c : report.columns) columns.push_back(std::move(c));
      }
      std::map<std::string, int> owner_of_file;
      for (size_t f = 0; f < listing.files.size(); ++f) {
        owner_of_file[listing.ckpt_dir + "/" + listing.files[f].name] = owners[f];
      }
      auto checked = check_decision_rows(columns);
      if (!checked) failure = checked.error();
      shares.resize(static_cast<size_t>(comm.size()));
      size_t ordinal = 0;
      for (auto& part : failure ? std::vector<PlannedPart>{} : plan_eviction(columns, settings, owner_of_file)) {
        if (!out.kept_rows_dir.empty()) part.kept_rows_file = out.kept_rows_dir + "/" + std::to_string(ordinal++);
        planned.emplace(part.part, part);
        shares[static_cast<size_t>(part.counter)].push_back(std::move(part));
      }
    }
  }
  auto share = scatter_plan_from_root(comm, failure, shares, "eviction-plan");
  if (!share) return share.error();  // every rank has the same error
  // 3. count, 4. gather; every rank learns the verdict
  auto counted = gather_to_root(comm, count_parts(share.value()), "eviction-counts");
  auto verdict = broadcast_result<Ok>(
      comm,
      [&]() -> Result<Ok> {
        if (auto error = first_error(counted)) return *error;
        for (auto& report : counted.value()) {
          for (auto& c : report.counts) out.parts.push_back(std::move(c));
        }
        std::sort(out.parts.begin(), out.parts.end(), [](const PartCount& a, const PartCount& b) { return a.part < b.part; });
        for (const PartCount& c : out.parts) {
          TableEviction& t = out.tables[c.part.table];
          t.rows += c.rows;
          t.evicted += c.rows - c.kept;
        }
        return Ok{};
      },
      "eviction-verdict");
  if (!verdict) return verdict.error();
  // 4. each rank's selections: the parts with a slot in one of its files (rank 0 knows every block's file)
  std::vector<std::vector<PartSelection>> routed;
  if (comm.is_root()) {
    std::map<PartId, const PartCount*> counts;
    for (const PartCount& c : out.parts) counts.emplace(c.part, &c);
    std::vector<std::set<PartId>> parts_of(static_cast<size_t>(comm.size()));
    for (size_t i = 0; i < listing.blocks.size(); ++i) {
      const BlockCatalog::Block block = listing.blocks[i];
      auto key = parse_sparse_key_view(block.logical);
      if (!key || block.file == BlockCatalog::kNotIndexed) continue;
      PartId part = part_of_key(key->child, block.key);
      if (counts.count(part)) parts_of[static_cast<size_t>(owners[block.file])].insert(std::move(part));
    }
    routed.resize(parts_of.size());
    for (size_t rank = 0; rank < parts_of.size(); ++rank) {
      for (const PartId& part : parts_of[rank]) {
        const PartCount& c = *counts.at(part);
        const PlannedPart& p = planned.at(part);
        routed[rank].push_back(PartSelection{part, p.decision, c.rows, c.kept, p.kept_rows_file});
      }
    }
  }
  auto mine_selected = scatter_from_root<std::vector<PartSelection>>(
      comm, [&](int rank) -> Result<std::vector<PartSelection>> { return std::move(routed[static_cast<size_t>(rank)]); },
      "eviction-selections");
  if (!mine_selected) return mine_selected.error();
  for (auto& selection : mine_selected.value()) {
    PartId part = selection.part;
    out.selections.emplace(std::move(part), std::make_shared<const PartSelection>(std::move(selection)));
  }
  return out;
}

}  // namespace recis_convert
