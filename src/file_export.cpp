#include "recis_convert/file_export.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "recis_convert/file_io.h"
#include "recis_convert/quantize.h"

namespace recis_convert {
namespace {

std::string join(const std::string& dir, const std::string& name) { return dir + "/" + name; }


Status write_export(int src_fd, const std::string& src_path, const std::string& dst_path, const FilePlan& plan,
                    CopyEngine& engine, WritebackQueue* writeback, FileResult& result) {
  // O_EXCL: the staging directory is ours, so an existing file means a plan bug, never something to clobber.
  FileDescriptor dst(::open(dst_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
  if (dst.get() < 0) return output_error(dst_path, std::string("cannot create: ") + std::strerror(errno));
  auto outcome = engine.write(src_fd, src_path, dst.get(), dst_path, plan);
  Status status = Ok{};
  if (!outcome) {
    status = outcome.error();
  } else if (writeback) {
    status = writeback->add(dst.release(), dst_path);  // fsynced later, so the copy never waits for the disk
  } else if (::close(dst.release()) != 0) {
    status = output_error(dst_path, std::string("close failed: ") + std::strerror(errno));
  }
  if (!status) {
    ::unlink(dst_path.c_str());
    return status;
  }
  result.output_bytes = outcome.value().bytes_written;
  result.checksum = outcome.value().checksum;
  return Ok{};
}

nlohmann::json tensor_to_json(const TensorInfo& t) {
  return {{"name", t.name}, {"dtype", t.dtype_spelling}, {"shape", t.shape}, {"begin", t.begin}, {"end", t.end}};
}

TensorInfo tensor_from_json(const nlohmann::json& j) {
  TensorInfo t;
  t.name = j.at("name").get<std::string>();
  t.dtype_spelling = j.at("dtype").get<std::string>();
  t.dtype = parse_dtype(t.dtype_spelling).value_or(DType::kU8);  // spelled by our own reader: always known
  t.shape = j.at("shape").get<std::vector<uint64_t>>();
  t.begin = j.at("begin").get<uint64_t>();
  t.end = j.at("end").get<uint64_t>();
  return t;
}

}  // namespace

Result<FileDecision> decide_data_file(int fd, const CheckpointListing& listing, const DataFile& file,
                                      const OptimizerSlotFilter& filter) {
  const std::string path = join(listing.ckpt_dir, file.name);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return bad_input(path, std::string("cannot stat: ") + std::strerror(errno));
  if (static_cast<uint64_t>(st.st_size) != file.size) {
    return bad_input(path, "size changed from " + std::to_string(file.size) + " to " + std::to_string(st.st_size) +
                               " bytes since discovery");
  }
  auto header = read_safetensors_header(fd, file.size, path);
  if (!header) return header.error();
  FileDecision decision;
  decision.header = std::move(header).value();
  for (const auto& tensor : decision.header.tensors) {
    const std::string quoted = nlohmann::json(tensor.name).dump();
    auto indexed = listing.block_file.find(tensor.name);
    if (indexed == listing.block_file.end()) {
      return bad_input(path, "tensor " + quoted + " is not in the checkpoint's index");
    }
    if (indexed->second != file.name) {
      return bad_input(path, "tensor " + quoted + " is indexed in " + indexed->second + ", not in this file");
    }
    auto key = classify_key(tensor.name, listing.tensorkey);
    if (!key) return bad_input(path, "tensor " + quoted + " is neither in tensorkey.json nor a dense \"name^ \" key");
    decision.keep.push_back(filter.keeps(*key));
    decision.keys.push_back(std::move(*key));
  }
  return decision;
}

Result<FileResult> export_data_file(const CheckpointListing& listing, const DataFile& file,
                                    const OptimizerSlotFilter& filter, CopyEngine& engine,
                                    const FileExportSettings& settings) {
  const std::string src_path = join(listing.ckpt_dir, file.name);
  FileDescriptor src(::open(src_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (src.get() < 0) return bad_input(src_path, std::string("cannot open: ") + std::strerror(errno));
  auto decision = decide_data_file(src.get(), listing, file, filter);
  if (!decision) return decision.error();

  FileResult result;
  result.name = file.name;
  result.source_bytes = file.size;
  const FileDecision& d = decision.value();
  std::vector<bool> quantize(d.header.tensors.size(), false);
  bool quantizing = false;
  if (settings.quantize_int8) {
    for (size_t i = 0; i < quantize.size(); ++i) {
      if (!d.keep[i] || !d.keys[i].sparse || d.keys[i].sparse_key.slot != "embedding") continue;
      const TensorInfo& t = d.header.tensors[i];
      if (t.shape.size() != 2 || !can_quantize(t.dtype)) {
        return bad_input(src_path, "embedding tensor " + nlohmann::json(t.name).dump() + " (" + t.dtype_spelling +
                                       ", " + std::to_string(t.shape.size()) +
                                       "-D) cannot be quantized: int8 needs 2-D F32, F16, BF16 or F64 rows");
      }
      quantize[i] = quantizing = true;
    }
  }
  FilePlan plan = filter.is_identity() && !quantizing ? plan_verbatim_copy(d.header)
                                                      : plan_filtered_file(d.header, d.keep, quantize);
  result.kept = plan.kept;
  result.dropped = plan.dropped;
  result.written = !plan.kept.empty();
  if (!result.written) return result;
  if (settings.dry_run) {
    result.output_bytes = plan.output_bytes();
    return result;
  }
  auto written = write_export(src.get(), src_path, join(settings.staging_dir, file.name), plan, engine,
                              settings.writeback, result);
  if (!written) return written.error();
  return result;
}

std::string file_results_to_json(const std::vector<FileResult>& results) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : results) {
    nlohmann::json kept = nlohmann::json::array(), dropped = nlohmann::json::array();
    for (const auto& t : r.kept) kept.push_back(tensor_to_json(t));
    for (const auto& t : r.dropped) dropped.push_back(tensor_to_json(t));
    out.push_back({{"name", r.name}, {"source_bytes", r.source_bytes}, {"written", r.written},
                   {"output_bytes", r.output_bytes}, {"checksum", r.checksum}, {"kept", kept}, {"dropped", dropped}});
  }
  return out.dump();
}

Result<std::vector<FileResult>> file_results_from_json(const std::string& text) {
  try {
    std::vector<FileResult> results;
    for (const auto& j : nlohmann::json::parse(text)) {
      FileResult r;
      r.name = j.at("name").get<std::string>();
      r.source_bytes = j.at("source_bytes").get<uint64_t>();
      r.written = j.at("written").get<bool>();
      r.output_bytes = j.at("output_bytes").get<uint64_t>();
      r.checksum = j.at("checksum").get<uint64_t>();
      for (const auto& t : j.at("kept")) r.kept.push_back(tensor_from_json(t));
      for (const auto& t : j.at("dropped")) r.dropped.push_back(tensor_from_json(t));
      results.push_back(std::move(r));
    }
    return results;
  } catch (const nlohmann::json::exception& e) {
    return Error{ExitCode::kInternal, "", std::string("corrupt file-result message: ") + e.what()};
  }
}

}  // namespace recis_convert
