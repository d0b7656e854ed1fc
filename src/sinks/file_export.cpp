#include "recis_convert/sinks/file_export.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "recis_convert/common/file_io.h"
#include "recis_convert/plan/piece_plan.h"

namespace recis_convert {
namespace {

std::string join(const std::string& dir, const std::string& name) { return dir + "/" + name; }

// A written output's descriptor, handed to the writeback queue (fsynced later, so the copy never waits for the
// disk; `then` runs once it is durable) or closed now (then `then` at once).
Status hand_over(const FileExportSettings& settings, FileDescriptor& dst, const std::string& dst_path,
                 std::function<Status()> then) {
  if (settings.writeback) return settings.writeback->add(dst.release(), dst_path, std::move(then));
  if (::close(dst.release()) != 0) return output_error(dst_path, std::string("close failed: ") + std::strerror(errno));
  return then ? then() : Status(Ok{});
}

Status write_export(int src_fd, const std::string& src_path, const std::string& dst_path, const FileLayout& plan,
                    CopyEngine& engine, const FileExportSettings& settings, FileResult& result) {
  // O_EXCL: the staging directory is ours, so an existing file means a plan bug, never something to clobber.
  FileDescriptor dst(::open(dst_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
  if (dst.get() < 0) return output_error(dst_path, std::string("cannot create: ") + std::strerror(errno));
  const auto started = std::chrono::steady_clock::now();
  auto outcome = engine.write(src_fd, src_path, dst.get(), dst_path, plan);
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
  if (outcome) {
    result.output_bytes = outcome.value().bytes_written;
    result.checksum = outcome.value().checksum;
  }
  std::function<Status()> then;
  if (settings.once_durable) {
    then = [done = settings.once_durable, finished = result, seconds = took.count()] { return done(finished, seconds); };
  }
  Status status = outcome ? hand_over(settings, dst, dst_path, std::move(then)) : Status(outcome.error());
  if (!status) {
    ::unlink(dst_path.c_str());
    return status;
  }
  return Ok{};
}

}  // namespace

Result<FileDecision> decide_data_file(int fd, const CheckpointListing& listing, const DataFile& file,
                                      const RowTransformChain& transforms, const PartSelections* selections,
                                      const TensorRowsOf& tensor_rows) {
  const std::string path = join(listing.ckpt_dir, file.name);
  auto now = stamp_of(fd, path);
  if (!now) return now.error();
  if (now.value().size != file.size) {
    return bad_input(path, "size changed from " + std::to_string(file.size) + " to " +
                               std::to_string(now.value().size) + " bytes since discovery");
  }
  if (now.value() != file.stamp()) return bad_input(path, "was modified since discovery (rewritten in place?)");
  auto header = read_safetensors_header(fd, file.size, path);
  if (!header) return header.error();
  FileDecision decision;
  decision.header = std::move(header).value();
  for (const auto& tensor : decision.header.tensors) {
    auto quoted = [&tensor] { return nlohmann::json(tensor.name).dump(); };  // built only for a message
    auto block = listing.blocks.find(tensor.name);
    if ((!block || block->file == BlockCatalog::kNotIndexed) && !listing.blocks_of_all_files) {
      return bad_input(path, "tensor " + quoted() + " is not indexed in this file");
    }
    if (!block || block->file == BlockCatalog::kNotIndexed) {
      return bad_input(path, "tensor " + quoted() + " is not in the checkpoint's index");
    }
    if (listing.files[block->file].name != file.name) {
      return bad_input(path, "tensor " + quoted() + " is indexed in " + listing.files[block->file].name +
                                 ", not in this file");
    }
    auto key = classify_key(tensor.name, block->logical);
    if (!key) {
      return bad_input(path, "tensor " + quoted() + " is neither in tensorkey.json nor a dense \"name^ \" key");
    }
    decision.keys.push_back(std::move(*key));
  }
  // Then the row transforms, slot by slot (a sparse tensor holds rows of one slot of one table).
  for (size_t i = 0; i < decision.keys.size(); ++i) {
    const KeyClass& key = decision.keys[i];
    TensorRows given;
    if (tensor_rows) {
      auto asked = tensor_rows(TensorOfFile{path, fd, decision.header, i, key});
      if (!asked) return asked.error();
      given = std::move(asked).value();
    }
    decision.from.push_back(given.from);
    const TensorInfo& tensor = given.from ? given.from->tensor : decision.header.tensors[i];
    decision.selections.push_back(given.selection);
    if (!key.sparse) {
      decision.keep.push_back(transforms.keeps_dense(key.dense_name));
      decision.rows.push_back(nullptr);
      continue;
    }
    if (selections && !given.selection) {
      auto selected = selections->find(part_of_key(key.sparse_key.child, tensor.name));
      if (selected != selections->end()) {
        const PartSelection& part = *selected->second;
        const uint64_t rows = tensor.shape.empty() ? 0 : tensor.shape[0];
        if (rows != part.rows) {
          const DecisionColumn& by = part.decision.step_filter ? *part.decision.step_filter : *part.decision.embedding;
          return bad_input(path, "tensor " + nlohmann::json(tensor.name).dump() + " has " + std::to_string(rows) +
                                     " rows but its part's " + nlohmann::json(by.tensor).dump() + " has " +
                                     std::to_string(part.rows));
        }
        decision.selections.back() = selected->second;
      }
    }
    auto rows = transforms.prepare({key.sparse_key.child, key.sparse_key.slot, tensor.name, path},
                                   RowLayout::of_tensor(tensor.dtype, tensor.dtype_spelling, tensor.shape));
    if (!rows) return rows.error();
    decision.keep.push_back(rows.value().kept());
    decision.rows.push_back(rows.value().kept() && rows.value().rewritten()
                                ? std::make_shared<const SlotRows>(std::move(rows).value())
                                : nullptr);
  }
  return decision;
}

namespace {

// A data file opened, decided and laid out: what a whole file's export and a piece's share.
struct PlannedFile {
  std::string src_path;
  FileDescriptor src{-1};
  FileLayout layout;
  FileResult result;  // without bytes and checksum yet
};

Result<PlannedFile> plan_data_file(const CheckpointListing& listing, const DataFile& file,
                                   const RowTransformChain& transforms, const FileExportSettings& settings) {
  Result<PlannedFile> out = PlannedFile{};
  PlannedFile& p = out.value();
  p.src_path = join(listing.ckpt_dir, file.name);
  auto opened = open_input_file(p.src_path);
  if (!opened) return opened.error();
  p.src = std::move(opened).value();
  auto decision = decide_data_file(p.src.get(), listing, file, transforms, settings.selections, settings.tensor_rows);
  if (!decision) return decision.error();
  p.result.name = file.name;
  p.result.source_bytes = file.size;
  const FileDecision& d = decision.value();
  // A file is copied byte for byte unless a transform may drop tensors or rewrites rows of this file (a filter
  // that happens to keep everything still rewrites the header, as it always has).
  auto any = [](const auto& per_tensor) {
    return std::any_of(per_tensor.begin(), per_tensor.end(), [](const auto& x) { return x != nullptr; });
  };
  const bool rows_from_elsewhere = std::any_of(d.from.begin(), d.from.end(), [](const auto& f) { return f.has_value(); });
  p.layout = !transforms.drops_anything() && !any(d.rows) && !any(d.selections) && !rows_from_elsewhere
                 ? lay_out_verbatim_copy(d.header)
                 : lay_out_filtered_file(d.header, d.keep, d.rows, d.selections, d.from);
  p.result.kept = p.layout.kept;
  p.result.dropped = p.layout.dropped;
  p.result.written = !p.layout.kept.empty();
  p.result.output_bytes = p.result.written ? p.layout.output_bytes() : 0;
  return out;
}

}  // namespace

Result<FileResult> export_data_file(const CheckpointListing& listing, const DataFile& file,
                                    const RowTransformChain& transforms, CopyEngine& engine,
                                    const FileExportSettings& settings) {
  auto planned = plan_data_file(listing, file, transforms, settings);
  if (!planned) return planned.error();
  PlannedFile& p = planned.value();
  if (!p.result.written || settings.dry_run) return std::move(p.result);
  auto written = write_export(p.src.get(), p.src_path, join(settings.staging_dir, file.name), p.layout, engine,
                              settings, p.result);
  if (!written) return written.error();
  auto unchanged = check_read_unchanged(p.src.get(), p.src_path, file);
  if (!unchanged) return unchanged.error();
  return std::move(p.result);
}

Result<PieceOutcome> export_data_file_piece(const CheckpointListing& listing, const DataFile& file, uint32_t piece,
                                            uint32_t pieces, const RowTransformChain& transforms, CopyEngine& engine,
                                            const FileExportSettings& settings) {
  auto planned = plan_data_file(listing, file, transforms, settings);
  if (!planned) return planned.error();
  PlannedFile& p = planned.value();
  PieceOutcome out;
  out.piece.file = file.name;
  out.piece.piece = piece;
  out.piece.pieces = pieces;
  if (piece == 0) out.file = p.result;
  const uint64_t piece_bytes = engine.piece_bytes();
  const ByteWindow window = piece_window(p.result.output_bytes, piece_bytes, piece, pieces);
  out.piece.first_checksum_piece = window.begin / piece_bytes;
  if (!p.result.written || settings.dry_run || window.begin == window.end) return out;
  const std::string dst_path = join(settings.staging_dir, file.name);
  // Not O_EXCL: every piece's writer opens the one output file, in any order (the staging directory is ours).
  FileDescriptor dst(::open(dst_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666));
  if (dst.get() < 0) return output_error(dst_path, std::string("cannot create: ") + std::strerror(errno));
  const uint64_t moved_before = engine.source_bytes_moved();
  const auto started = std::chrono::steady_clock::now();
  auto written = engine.write_window(p.src.get(), p.src_path, dst.get(), dst_path, p.layout, window.begin, window.end);
  if (!written) return written.error();
  auto unchanged = check_read_unchanged(p.src.get(), p.src_path, file);
  if (!unchanged) return unchanged.error();
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
  out.piece.checksums = std::move(written).value();
  out.piece.bytes_in = engine.source_bytes_moved() - moved_before;
  out.piece.bytes_out = window.end - window.begin;
  std::function<Status()> then;
  if (settings.piece_durable) {
    then = [done = settings.piece_durable, finished = out, seconds = took.count()] { return done(finished, seconds); };
  }
  auto handed = hand_over(settings, dst, dst_path, std::move(then));
  if (!handed) return handed.error();
  return out;
}

}  // namespace recis_convert
