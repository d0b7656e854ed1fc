#include "recis_convert/pipeline/reshard_stage.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "recis_convert/common/checksum.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/mpi/job_messages.h"
#include "recis_convert/pipeline/row_loop.h"
#include "recis_convert/plan/slices.h"
#include "recis_convert/sources/column_reader.h"
#include "recis_convert/transforms/row_selection.h"

namespace recis_convert {
namespace {

// The kept rows of one part bound for each target, from its `rows` ids (and its eviction decision, if any),
// through the row loop.
Result<std::vector<TargetRows>> count_targets(RowLoop& loop, RowReader& ids, uint64_t rows,
                                              const PartSelection* selection, const PartOfIdTable& part_of) {
  auto opened = RowSelector::open_if(selection);
  if (!opened) return opened.error();
  std::optional<RowSelector> selector = std::move(opened).value();
  RowRun run;
  run.end = rows;
  run.selector = selector ? &*selector : nullptr;
  run.id_column = 0;
  run.route = &part_of;
  auto counted = loop.count_kept_rows(ids, run, part_of.count());
  if (!counted) return counted.error();
  std::vector<TargetRows> out;
  for (uint32_t target = 0; target < part_of.count(); ++target) {
    const uint64_t n = counted.value().per_target[target];
    if (n > 0) out.push_back(TargetRows{target, n});
  }
  return out;
}

// Step 1 on one rank: its files' kept tensors, and the targets of the parts whose ids it holds. With
// `tensor_rows` (a merge), a tensor's rows may be others than its file's (file_export.h), and so may its part's
// ids and selection.
RankReshardCounts count_rank(const JobOptions& o, const CheckpointListing& listing, const std::vector<size_t>& mine,
                             const RowTransformChain& transforms, const PartSelections* selections,
                             const TensorRowsOf& tensor_rows) {
  RankReshardCounts out;
  const PartOfIdTable part_of(o.reshard);
  std::vector<char> buffer(kCountPassBufferBytes);
  RowLoop loop(buffer);
  auto fail = [&out](Error e) {
    out.error = std::move(e);
    return std::move(out);
  };
  for (size_t index : mine) {
    const DataFile& file = listing.files[index];
    const std::string path = listing.ckpt_dir + "/" + file.name;
    auto opened = open_input_file(path);
    if (!opened) return fail(opened.error());
    FileDescriptor fd = std::move(opened).value();
    auto decided = decide_data_file(fd.get(), listing, file, transforms, selections, tensor_rows);
    if (!decided) return fail(decided.error());
    const FileDecision& d = decided.value();
    for (size_t i = 0; i < d.header.tensors.size(); ++i) {
      if (!d.keep[i]) continue;
      const std::optional<RowsFrom>& from = d.from[i];
      const TensorInfo& t = from ? from->tensor : d.header.tensors[i];
      if (!d.keys[i].sparse) {
        out.found.dense.push_back(KeptDense{t, path});
        continue;
      }
      const SparseKey& key = d.keys[i].sparse_key;
      KeptSlot slot{part_of_key(key.child, t.name), key.slot, t.name, path, t.shape.empty() ? 0 : t.shape[0],
                    d.rows[i] ? d.rows[i]->output() : RowLayout::of_tensor(t.dtype, t.dtype_spelling, t.shape)};
      if (key.slot == "id") {
        if (t.dtype != DType::kI64 || t.shape.size() != 1) {
          return fail(bad_input(path, "id tensor " + nlohmann::json(t.name).dump() + " is not int64 [N]"));
        }
        const DecisionColumn ids{path, t.name, d.header.data_start() + d.header.tensors[i].begin, t.shape[0],
                                 DType::kI64, 1};
        ColumnReader in_file({FileColumn{fd.get(), path, "tensor " + nlohmann::json(t.name).dump(), ids.offset,
                                         sizeof(int64_t)}});
        const PartSelection* selection = d.selections[i].get();
        auto targets = count_targets(loop, from ? *from->reader : in_file, ids.rows, selection, part_of);
        if (!targets) return fail(targets.error());
        out.found.parts.push_back(PartTargets{slot.part, ids, std::move(targets).value()});
        if (selection) out.kept.push_back(PartCount{slot.part, selection->rows, selection->kept});
      }
      out.found.slots.push_back(std::move(slot));
    }
  }
  return out;
}

}  // namespace

Result<ReshardStage> plan_resharding(const JobOptions& o, const CheckpointListing& listing,
                                     const std::vector<size_t>& mine, const std::vector<int>& owners,
                                     const RowTransformChain& transforms, const PartSelections* selections,
                                     const std::string& staging_dir, Comm& comm, const TensorRowsOf& tensor_rows) {
  auto counted = gather_to_root(comm, count_rank(o, listing, mine, transforms, selections, tensor_rows),
                                "reshard-counts");
  ReshardStage stage;
  std::vector<ReshardShare> shares;
  std::optional<Error> failure;
  if (comm.is_root()) {
    failure = first_error(counted);
    ReshardInput input;
    if (!failure) {
      input.count = o.reshard;
      std::map<PartId, uint64_t> kept_rows;  // the parts with a selection, from the rank that counted its ids
      for (auto& report : counted.value()) {
        for (const PartCount& c : report.kept) kept_rows[c.part] = c.kept;
        for (auto& p : report.found.parts) input.parts.push_back(std::move(p));
        for (auto& s : report.found.slots) input.slots.push_back(std::move(s));
        for (auto& d : report.found.dense) input.dense.push_back(std::move(d));
      }
      auto planned = plan_reshard(input, kept_rows, listing.ckpt_dir);
      if (!planned) {
        failure = planned.error();
      } else {
        stage.layout = std::move(planned).value();
      }
    }
    // into model.h5 the plan places rows; there are no output files to create
    if (!failure && !staging_dir.empty() && o.format == ExportFormat::kSafetensors) {
      auto created = create_reshard_files(*stage.layout, staging_dir, false);  // --resume refuses --reshard here
      if (!created) failure = created.error();
    }
    if (!failure) {  // each rank's share: the tensors of the files it streams
      std::map<std::string, int> owner_of_file;
      for (size_t f = 0; f < listing.files.size(); ++f) {
        owner_of_file[listing.ckpt_dir + "/" + listing.files[f].name] = owners[f];
      }
      shares.resize(static_cast<size_t>(comm.size()));
      for (auto& share : shares) {
        share.count = o.reshard;
        if (o.format == ExportFormat::kHdf5) share.table_rows = stage.layout->rows;  // every rank sizes model.h5
      }
      for (const KeptSlot& s : input.slots) {
        shares[static_cast<size_t>(owner_of_file.at(s.file))].sparse.emplace(s.tensor, stage.layout->sparse.at(s.tensor));
      }
      for (const KeptDense& d : input.dense) {
        shares[static_cast<size_t>(owner_of_file.at(d.file))].dense.emplace(d.tensor.name,
                                                                            stage.layout->dense.at(d.tensor.name));
      }
    }
  }
  auto share = scatter_plan_from_root(comm, failure, shares, "reshard-plan");
  if (!share) return share.error();  // every rank has the same error
  stage.share = std::move(share).value();
  return stage;
}

Result<std::vector<FileResult>> describe_resharded_files(const ReshardLayout& layout, const std::string& staging_dir,
                                                         const std::map<std::string, FileDigest>& digests,
                                                         bool fsync, bool dry_run, std::vector<FileResult> sources) {
  std::vector<FileResult> out;
  for (const ReshardFile& f : layout.files) {
    FileResult r;
    r.name = f.name;
    r.written = true;
    r.output_bytes = f.bytes();
    r.kept = f.tensors;
    if (!dry_run) {
      const std::string path = staging_dir + "/" + f.name;
      if (fsync) {  // rank 0, whichever ranks wrote into it
        auto synced = fsync_file(path);
        if (!synced) return synced.error();
      }
      auto digest = digests.find(f.name);
      if (digest == digests.end()) return Error{ExitCode::kInternal, path, "was not checksummed"};
      if (digest->second.bytes != f.bytes()) {
        return output_error(path, "has " + std::to_string(digest->second.bytes) + " bytes, expected " +
                                      std::to_string(f.bytes()));
      }
      r.checksum = digest->second.checksum;
    }
    out.push_back(std::move(r));
  }
  for (auto& s : sources) {  // the totals (bytes in, dropped tensors) belong to no one output file: file 0 has them
    out.front().source_bytes += s.source_bytes;
    for (auto& t : s.dropped) out.front().dropped.push_back(std::move(t));
  }
  return out;
}

void describe_resharded_listing(const ReshardLayout& layout, const std::vector<FileResult>& files,
                                CheckpointListing& listing) {
  listing.files.clear();
  for (const auto& f : files) listing.files.push_back(DataFile{f.name, f.output_bytes});
  listing.blocks = reshard_catalog(layout);
  listing.blocks_of_all_files = true;
}

}  // namespace recis_convert
