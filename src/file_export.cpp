#include "recis_convert/file_descriptor.h"
#include "recis_convert/file_export.h"
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
#include <fcntl.h>
#include "recis_convert/file_descriptor.h"
#include <sys/stat.h>
#include "recis_convert/file_descriptor.h"
#include <unistd.h>
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
#include <cerrno>
#include "recis_convert/file_descriptor.h"
#include <cstring>
#include "recis_convert/file_descriptor.h"
#include <nlohmann/json.hpp>
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
namespace recis_convert {
#include "recis_convert/file_descriptor.h"
namespace {
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
std::string join(const std::string& dir, const std::string& name) { return dir + "/" + name; }
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
Status write_export(int src_fd, const std::string& src_path, const std::string& dst_path, const FilePlan& plan,
#include "recis_convert/file_descriptor.h"
                    CopyEngine& engine, WritebackQueue* writeback, FileResult& result) {
#include "recis_convert/file_descriptor.h"
  // O_EXCL: the staging directory is ours, so an existing file means a plan bug, never something to clobber.
#include "recis_convert/file_descriptor.h"
  FileDescriptor dst(::open(dst_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
#include "recis_convert/file_descriptor.h"
  if (dst.get() < 0) return output_error(dst_path, std::string("cannot create: ") + std::strerror(errno));
#include "recis_convert/file_descriptor.h"
  auto outcome = engine.write(src_fd, src_path, dst.get(), dst_path, plan);
#include "recis_convert/file_descriptor.h"
  Status status = Ok{};
#include "recis_convert/file_descriptor.h"
  if (!outcome) {
#include "recis_convert/file_descriptor.h"
    status = outcome.error();
#include "recis_convert/file_descriptor.h"
  } else if (writeback) {
#include "recis_convert/file_descriptor.h"
    status = writeback->add(dst.release(), dst_path);  // fsynced later, so the copy never waits for the disk
#include "recis_convert/file_descriptor.h"
  } else if (::close(dst.release()) != 0) {
#include "recis_convert/file_descriptor.h"
    status = output_error(dst_path, std::string("close failed: ") + std::strerror(errno));
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"
  if (!status) {
#include "recis_convert/file_descriptor.h"
    ::unlink(dst_path.c_str());
#include "recis_convert/file_descriptor.h"
    return status;
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"
  result.output_bytes = outcome.value().bytes_written;
#include "recis_convert/file_descriptor.h"
  result.checksum = outcome.value().checksum;
#include "recis_convert/file_descriptor.h"
  return Ok{};
#include "recis_convert/file_descriptor.h"
}
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
nlohmann::json tensor_to_json(const TensorInfo& t) {
#include "recis_convert/file_descriptor.h"
  return {{"name", t.name}, {"dtype", t.dtype_spelling}, {"shape", t.shape}, {"begin", t.begin}, {"end", t.end}};
#include "recis_convert/file_descriptor.h"
}
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
TensorInfo tensor_from_json(const nlohmann::json& j) {
#include "recis_convert/file_descriptor.h"
  TensorInfo t;
#include "recis_convert/file_descriptor.h"
  t.name = j.at("name").get<std::string>();
#include "recis_convert/file_descriptor.h"
  t.dtype_spelling = j.at("dtype").get<std::string>();
#include "recis_convert/file_descriptor.h"
  t.dtype = parse_dtype(t.dtype_spelling).value_or(DType::kU8);  // spelled by our own reader: always known
#include "recis_convert/file_descriptor.h"
  t.shape = j.at("shape").get<std::vector<uint64_t>>();
#include "recis_convert/file_descriptor.h"
  t.begin = j.at("begin").get<uint64_t>();
#include "recis_convert/file_descriptor.h"
  t.end = j.at("end").get<uint64_t>();
#include "recis_convert/file_descriptor.h"
  return t;
#include "recis_convert/file_descriptor.h"
}
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
}  // namespace
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
Result<FileDecision> decide_data_file(int fd, const CheckpointListing& listing, const DataFile& file,
#include "recis_convert/file_descriptor.h"
                                      const OptimizerSlotFilter& filter) {
#include "recis_convert/file_descriptor.h"
  const std::string path = join(listing.ckpt_dir, file.name);
#include "recis_convert/file_descriptor.h"
  struct stat st {};
#include "recis_convert/file_descriptor.h"
  if (::fstat(fd, &st) != 0) return bad_input(path, std::string("cannot stat: ") + std::strerror(errno));
#include "recis_convert/file_descriptor.h"
  if (static_cast<uint64_t>(st.st_size) != file.size) {
#include "recis_convert/file_descriptor.h"
    return bad_input(path, "size changed from " + std::to_string(file.size) + " to " + std::to_string(st.st_size) +
#include "recis_convert/file_descriptor.h"
                               " bytes since discovery");
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"
  auto header = read_safetensors_header(fd, file.size, path);
#include "recis_convert/file_descriptor.h"
  if (!header) return header.error();
#include "recis_convert/file_descriptor.h"
  FileDecision decision;
#include "recis_convert/file_descriptor.h"
  decision.header = std::move(header).value();
#include "recis_convert/file_descriptor.h"
  for (const auto& tensor : decision.header.tensors) {
#include "recis_convert/file_descriptor.h"
    const std::string quoted = nlohmann::json(tensor.name).dump();
#include "recis_convert/file_descriptor.h"
    auto indexed = listing.block_file.find(tensor.name);
#include "recis_convert/file_descriptor.h"
    if (indexed == listing.block_file.end()) {
#include "recis_convert/file_descriptor.h"
      return bad_input(path, "tensor " + quoted + " is not in the checkpoint's index");
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
    if (indexed->second != file.name) {
#include "recis_convert/file_descriptor.h"
      return bad_input(path, "tensor " + quoted + " is indexed in " + indexed->second + ", not in this file");
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
    auto key = classify_key(tensor.name, listing.tensorkey);
#include "recis_convert/file_descriptor.h"
    if (!key) return bad_input(path, "tensor " + quoted + " is neither in tensorkey.json nor a dense \"name^ \" key");
#include "recis_convert/file_descriptor.h"
    decision.keep.push_back(filter.keeps(*key));
#include "recis_convert/file_descriptor.h"
    decision.keys.push_back(std::move(*key));
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"
  return decision;
#include "recis_convert/file_descriptor.h"
}
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
Result<FileResult> export_data_file(const CheckpointListing& listing, const DataFile& file,
#include "recis_convert/file_descriptor.h"
                                    const OptimizerSlotFilter& filter, CopyEngine& engine,
#include "recis_convert/file_descriptor.h"
                                    const FileExportSettings& settings) {
#include "recis_convert/file_descriptor.h"
  const std::string src_path = join(listing.ckpt_dir, file.name);
#include "recis_convert/file_descriptor.h"
  FileDescriptor src(::open(src_path.c_str(), O_RDONLY | O_CLOEXEC));
#include "recis_convert/file_descriptor.h"
  if (src.get() < 0) return bad_input(src_path, std::string("cannot open: ") + std::strerror(errno));
#include "recis_convert/file_descriptor.h"
  auto decision = decide_data_file(src.get(), listing, file, filter);
#include "recis_convert/file_descriptor.h"
  if (!decision) return decision.error();
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
  FileResult result;
#include "recis_convert/file_descriptor.h"
  result.name = file.name;
#include "recis_convert/file_descriptor.h"
  result.source_bytes = file.size;
#include "recis_convert/file_descriptor.h"
  FilePlan plan = filter.is_identity() ? plan_verbatim_copy(decision.value().header)
#include "recis_convert/file_descriptor.h"
                                       : plan_filtered_file(decision.value().header, decision.value().keep);
#include "recis_convert/file_descriptor.h"
  result.kept = plan.kept;
#include "recis_convert/file_descriptor.h"
  result.dropped = plan.dropped;
#include "recis_convert/file_descriptor.h"
  result.written = !plan.kept.empty();
#include "recis_convert/file_descriptor.h"
  if (!result.written) return result;
#include "recis_convert/file_descriptor.h"
  if (settings.dry_run) {
#include "recis_convert/file_descriptor.h"
    result.output_bytes = plan.output_bytes();
#include "recis_convert/file_descriptor.h"
    return result;
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"
  auto written = write_export(src.get(), src_path, join(settings.staging_dir, file.name), plan, engine,
#include "recis_convert/file_descriptor.h"
                              settings.writeback, result);
#include "recis_convert/file_descriptor.h"
  if (!written) return written.error();
#include "recis_convert/file_descriptor.h"
  return result;
#include "recis_convert/file_descriptor.h"
}
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
std::string file_results_to_json(const std::vector<FileResult>& results) {
#include "recis_convert/file_descriptor.h"
  nlohmann::json out = nlohmann::json::array();
#include "recis_convert/file_descriptor.h"
  for (const auto& r : results) {
#include "recis_convert/file_descriptor.h"
    nlohmann::json kept = nlohmann::json::array(), dropped = nlohmann::json::array();
#include "recis_convert/file_descriptor.h"
    for (const auto& t : r.kept) kept.push_back(tensor_to_json(t));
#include "recis_convert/file_descriptor.h"
    for (const auto& t : r.dropped) dropped.push_back(tensor_to_json(t));
#include "recis_convert/file_descriptor.h"
    out.push_back({{"name", r.name}, {"source_bytes", r.source_bytes}, {"written", r.written},
#include "recis_convert/file_descriptor.h"
                   {"output_bytes", r.output_bytes}, {"checksum", r.checksum}, {"kept", kept}, {"dropped", dropped}});
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"
  return out.dump();
#include "recis_convert/file_descriptor.h"
}
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
Result<std::vector<FileResult>> file_results_from_json(const std::string& text) {
#include "recis_convert/file_descriptor.h"
  try {
#include "recis_convert/file_descriptor.h"
    std::vector<FileResult> results;
#include "recis_convert/file_descriptor.h"
    for (const auto& j : nlohmann::json::parse(text)) {
#include "recis_convert/file_descriptor.h"
      FileResult r;
#include "recis_convert/file_descriptor.h"
      r.name = j.at("name").get<std::string>();
#include "recis_convert/file_descriptor.h"
      r.source_bytes = j.at("source_bytes").get<uint64_t>();
#include "recis_convert/file_descriptor.h"
      r.written = j.at("written").get<bool>();
#include "recis_convert/file_descriptor.h"
      r.output_bytes = j.at("output_bytes").get<uint64_t>();
#include "recis_convert/file_descriptor.h"
      r.checksum = j.at("checksum").get<uint64_t>();
#include "recis_convert/file_descriptor.h"
      for (const auto& t : j.at("kept")) r.kept.push_back(tensor_from_json(t));
#include "recis_convert/file_descriptor.h"
      for (const auto& t : j.at("dropped")) r.dropped.push_back(tensor_from_json(t));
#include "recis_convert/file_descriptor.h"
      results.push_back(std::move(r));
#include "recis_convert/file_descriptor.h"
    }
#include "recis_convert/file_descriptor.h"
    return results;
#include "recis_convert/file_descriptor.h"
  } catch (const nlohmann::json::exception& e) {
#include "recis_convert/file_descriptor.h"
    return Error{ExitCode::kInternal, "", std::string("corrupt file-result message: ") + e.what()};
#include "recis_convert/file_descriptor.h"
  }
#include "recis_convert/file_descriptor.h"
}
#include "recis_convert/file_descriptor.h"

#include "recis_convert/file_descriptor.h"
}  // namespace recis_convert
