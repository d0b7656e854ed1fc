#include "recis_convert/common/file_io.h"
#include "recis_convert/metadata/metadata_stage.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

#include "recis_convert/metadata/export_files.h"

namespace recis_convert {

Result<ExportSummary> summarize_export(const JobOptions& o, const SourceDescription& source,
                                       std::vector<FileResult> files, QuantizationLedger quantization,
                                       const Log& log) {
  const CheckpointListing& listing = source.listing;
  std::sort(files.begin(), files.end(), [](const FileResult& a, const FileResult& b) { return a.name < b.name; });
  KeyOrder order = order_by_key(files, listing.blocks);
  if (order.missing_block) {  // each file checked that its tensors are indexed there: equal sets, once none is missing
    const BlockCatalog::Block block = listing.blocks[*order.missing_block];
    return bad_input(listing.ckpt_dir + "/" + listing.files[block.file].name,
                     "has no tensor " + nlohmann::json(std::string(block.key)).dump() +
                         ", which the checkpoint's index places there");
  }
  ExportSummary summary;
  summary.kept = std::move(order.kept);
  auto tables = summarize_tables(summary.kept, listing.ckpt_dir, o.embedding_dtypes);
  if (!tables) return tables.error();
  summary.tables = std::move(tables).value();
  if (o.reshard != 0) {  // model.h5 describes the source's parts by its tensors; it holds the M target parts
    for (auto& table : summary.tables) table.parts = o.reshard;
  }
  for (const auto& f : files) {
    summary.bytes_in += f.source_bytes;
    summary.bytes_out += f.written ? f.output_bytes : 0;
    for (const auto& t : f.dropped) summary.bytes_dropped += t.nbytes();
  }
  summary.quantization = std::move(quantization);
  summary.files = std::move(files);  // summary.kept points into its elements, which a move keeps where they are
  if (o.filter_optimizer && summary.bytes_dropped == 0) {
    log.warn("--filter-optimizer found no optimizer state (no slot or scalar named sparse_*) in " + listing.ckpt_dir);
  }
  return summary;
}

void log_dry_run(const JobOptions& o, const std::string& export_dir, const ExportSummary& summary,
                 const std::map<std::string, int>& owner, const Log& log) {
  struct stat st {};
  if (!export_dir.empty() && ::lstat(export_dir.c_str(), &st) == 0 && !o.overwrite) {
    log.warn(export_dir + " exists: a real run would stop with exit code 4 unless --overwrite is given");
  }
  for (const auto& f : summary.files) {
    uint64_t dropped = 0;
    for (const auto& t : f.dropped) dropped += t.nbytes();
    log.stage("plan: " + f.name + " -> rank " + std::to_string(owner.at(f.name)) + ": " + format_bytes(f.source_bytes) +
              ", keep " + std::to_string(f.kept.size()) + " tensors, drop " + std::to_string(f.dropped.size()) +
              " (" + format_bytes(static_cast<double>(dropped)) + ")" + (f.written ? "" : ", file not written"));
    for (const auto& t : f.dropped) log.stage("plan:   drop " + nlohmann::json(t.name).dump());
  }
  log.stage("dry run: " + std::to_string(summary.files.size()) + " files, " + format_bytes(summary.bytes_in) + " in, " +
            format_bytes(summary.bytes_out) + " would be written, " + format_bytes(summary.bytes_dropped) +
            " dropped; nothing written");
}

Result<ManifestInput> write_export_metadata(const JobOptions& o, const SourceDescription& source,
                                            ExportSummary& summary, const std::string& dir) {
  const CheckpointListing& listing = source.listing;
  ManifestInput manifest;
  manifest.tool_version = tool_version();
  manifest.checksum_piece_bytes = o.piece_bytes();
  manifest.source_checkpoint = resolved_path(listing.ckpt_dir);
  if (!source.is_hugectr()) {  // the training run's output directory: what every checkpoint of the run shares
    const size_t slash = manifest.source_checkpoint.find_last_of('/');
    manifest.lineage = slash == 0 ? "/" : manifest.source_checkpoint.substr(0, slash);
  }
  manifest.ckpt_id = listing.ckpt_id;
  manifest.filter_optimizer = o.filter_optimizer;
  manifest.drop_slots = o.drop_slots;
  manifest.embedding_dtypes = o.embedding_dtypes;
  manifest.quantization = summary.quantization;
  manifest.eviction = o.eviction;
  manifest.evictions = summary.evictions;
  manifest.clock = summary.clock;
  manifest.delta_base = summary.delta_base;
  manifest.reshard = o.reshard;
  manifest.fg_path = o.fg;
  manifest.mc_path = o.mc;
  manifest.tables = summary.tables;
  manifest.files = std::move(summary.files);  // a million tensors: moved, not copied (summary.kept stays valid)

  auto write = [&](const std::string& name, const std::string& content) -> Status {
    auto written = write_metadata_file(dir, name, content, o.fsync);
    if (!written) return written.error();
    manifest.metadata_files.push_back(written.value());
    return Ok{};
  };
  const std::vector<FileResult>& files = manifest.files;
  if (o.format == ExportFormat::kSafetensors) {  // with hdf5 there are no safetensors files for these to describe
    for (const char* name : {kIndexFile, kTensorKeyFile, kTorchRankFile}) {
      MetadataFileOut out(dir, name, o.fsync);  // written as it is made: a million entries are ~100 MB
      write_recis_metadata_file(name, files, summary.kept, out);
      auto written = out.finish();
      if (!written) return written.error();
      manifest.metadata_files.push_back(written.value());
    }
  } else {
    auto h5 = summary.shared.find("model.h5");  // checksummed by every rank (shared_file_checksums.h)
    if (h5 == summary.shared.end()) return Error{ExitCode::kInternal, dir + "/model.h5", "was not checksummed"};
    manifest.metadata_files.push_back(ExtraFile{"model.h5", h5->second.bytes, h5->second.checksum, true});
    summary.bytes_out = h5->second.bytes;  // the data files' bytes went into model.h5
  }
  for (const auto& [path, name] : {std::pair{o.fg, "fg.json"}, std::pair{o.mc, "input_columns.json"}}) {
    if (path.empty()) continue;
    auto text = read_json_config(path, name);
    if (!text) return text.error();
    auto written = write(name, text.value());
    if (!written) return written.error();
  }
  for (const auto& asset : o.asset_files) {
    auto copied = copy_asset(asset, dir, o.fsync);
    if (!copied) return copied.error();
    manifest.asset_files.push_back(copied.value());
  }
  return manifest;
}

Status write_manifest_and_record(const JobOptions& o, const ManifestInput& manifest, const std::string& dir,
                                 const RunReport& report) {
  auto written = write_metadata_file(dir, "manifest.json", make_manifest_json(manifest), o.fsync);
  if (!written) return written.error();
  auto recorded = write_metadata_file(dir, "run_record.json", report.to_json(ExitCode::kOk, true), o.fsync);
  if (!recorded) return recorded.error();
  return Ok{};
}

}  // namespace recis_convert
