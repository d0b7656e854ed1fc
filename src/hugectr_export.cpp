#include "recis_convert/hugectr_export.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "recis_convert/checksum.h"
#include "recis_convert/file_io.h"
#include "recis_convert/hugectr_graph.h"
#include "recis_convert/interrupt.h"
#include "recis_convert/strict_json.h"

namespace recis_convert {
namespace {

using json = nlohmann::json;

TensorInfo tensor(const std::string& name, DType dtype, const char* spelling, std::vector<uint64_t> shape,
                  uint64_t begin, uint64_t bytes) {
  TensorInfo t;
  t.name = name;
  t.dtype = dtype;
  t.dtype_spelling = spelling;
  t.shape = std::move(shape);
  t.begin = begin;
  t.end = begin + bytes;
  return t;
}

std::string block_key(const std::string& table, const char* slot) { return table + "." + slot + "/part_0_1"; }

// The output layout of one table: id, embedding[, slot_id], back to back after the header.
void lay_out(HugectrTableExport& t) {
  const uint64_t n = t.source.rows, vec = t.source.vec_size;
  t.tensors = {tensor(block_key(t.name, "id"), DType::kI64, "I64", {n}, 0, n * 8),
               tensor(block_key(t.name, "embedding"), DType::kF32, "F32", {n, vec}, n * 8, n * vec * 4)};
  if (t.source.has_slot_id) {
    t.tensors.push_back(tensor(block_key(t.name, "slot_id"), DType::kU64, "U64", {n}, n * 8 + n * vec * 4, n * 8));
  }
  t.preamble = serialize_recis_header(t.tensors, std::nullopt);
}

const char* slot_of_tensor(size_t index) { return index == 0 ? "id" : index == 1 ? "embedding" : "slot_id"; }

}  // namespace

uint64_t HugectrTableExport::file_bytes() const { return preamble.size() + (tensors.empty() ? 0 : tensors.back().end); }

uint64_t HugectrTableExport::source_bytes() const {
  const uint64_t n = source.rows;
  return n * (source.format == HugectrSparseFormat::kLegacyFile ? source.record_bytes : source.row_bytes());
}

Result<HugectrExportPlan> plan_hugectr_export(const JobOptions& o) {
  auto text = read_small_file(o.graph, 64u << 20);
  if (!text) return text.error();
  auto graph = parse_hugectr_graph(text.value(), o.graph);
  if (!graph) return graph.error();
  const HugectrGraph& g = graph.value();
  if (o.sparse.size() != g.embeddings.size()) {
    return usage_error(o.graph + " has " + std::to_string(g.embeddings.size()) + " embedding(s) but " +
                       std::to_string(o.sparse.size()) + " --sparse model(s) were given (one per embedding, in "
                       "graph order)");
  }
  if (!o.table_names.empty() && o.table_names.size() != g.embeddings.size()) {
    return usage_error("--table-names names " + std::to_string(o.table_names.size()) + " tables, the graph has " +
                       std::to_string(g.embeddings.size()));
  }
  if (!o.hugectr_dense.empty()) {
    struct stat st {};
    if (::stat(o.hugectr_dense.c_str(), &st) != 0) {
      return bad_input(o.hugectr_dense, std::string("cannot read: ") + std::strerror(errno));
    }
    auto sized = check_dense_file_size(g, static_cast<uint64_t>(st.st_size), o.hugectr_dense);
    if (!sized) return sized.error();
  }
  HugectrExportPlan plan;
  plan.graph_path = o.graph;
  std::set<std::string> names;
  for (size_t i = 0; i < g.embeddings.size(); ++i) {
    const HugectrEmbedding& e = g.embeddings[i];
    HugectrTableExport t;
    t.name = o.table_names.empty() ? e.top : o.table_names[i];
    if (t.name.empty() || t.name.find_first_of("/@^.") != std::string::npos || !names.insert(t.name).second) {
      return usage_error("table name \"" + t.name + "\" is empty, repeated, or holds one of / @ ^ .");
    }
    auto source = describe_hugectr_sparse(o.sparse[i], e.vec_size, HugectrLegacyLayout{g.legacy_key_bytes, e.localized});
    if (!source) return source.error();
    t.source = source.value();
    if (e.localized && !t.source.has_slot_id) {
      return bad_input(o.sparse[i], "has no slot_id file, but " + e.top + " is a localized embedding");
    }
    char file[64];
    std::snprintf(file, sizeof file, "model-%06zu-of-%06zu.safetensors", i, g.embeddings.size());
    t.file = file;
    lay_out(t);
    plan.tables.push_back(std::move(t));
  }
  return plan;
}

CheckpointListing hugectr_listing(const HugectrExportPlan& plan) {
  CheckpointListing listing;
  listing.source = plan.graph_path;
  const size_t slash = plan.graph_path.find_last_of('/');
  listing.ckpt_dir = slash == std::string::npos ? "." : plan.graph_path.substr(0, slash);
  listing.ckpt_id = "hugectr";
  for (const auto& t : plan.tables) {
    listing.files.push_back({t.file, t.file_bytes()});
    for (size_t i = 0; i < t.tensors.size(); ++i) {
      listing.tensorkey[t.tensors[i].name] = t.name + "@" + slot_of_tensor(i) + "^" + kHugectrSlice;
      listing.block_file[t.tensors[i].name] = t.file;
    }
  }
  return listing;
}

std::string hugectr_plan_to_json(const HugectrExportPlan& plan) {
  json j{{"graph", plan.graph_path}, {"tables", json::array()}};
  for (const auto& t : plan.tables) {
    const HugectrSparseTable& s = t.source;
    j["tables"].push_back({{"name", t.name}, {"file", t.file}, {"path", s.path},
                           {"legacy", s.format == HugectrSparseFormat::kLegacyFile}, {"rows", s.rows},
                           {"vec", s.vec_size}, {"slot_id", s.has_slot_id}, {"key_bytes", s.key_bytes},
                           {"record_bytes", s.record_bytes}});
  }
  return j.dump();
}

Result<HugectrExportPlan> hugectr_plan_from_json(const std::string& text) {
  try {
    const json j = json::parse(text);
    HugectrExportPlan plan;
    plan.graph_path = j.at("graph").get<std::string>();
    for (const auto& t : j.at("tables")) {
      HugectrTableExport out;
      out.name = t.at("name").get<std::string>();
      out.file = t.at("file").get<std::string>();
      out.source.path = t.at("path").get<std::string>();
      out.source.format = t.at("legacy").get<bool>() ? HugectrSparseFormat::kLegacyFile : HugectrSparseFormat::kDirectory;
      out.source.rows = t.at("rows").get<uint64_t>();
      out.source.vec_size = t.at("vec").get<uint64_t>();
      out.source.has_slot_id = t.at("slot_id").get<bool>();
      out.source.key_bytes = t.at("key_bytes").get<uint32_t>();
      out.source.record_bytes = t.at("record_bytes").get<uint64_t>();
      lay_out(out);
      plan.tables.push_back(std::move(out));
    }
    return plan;
  } catch (const json::exception& e) {
    return Error{ExitCode::kInternal, "", std::string("corrupt HugeCTR plan message: ") + e.what()};
  }
}

Status create_hugectr_files(const HugectrExportPlan& plan, const std::string& staging_dir) {
  for (const auto& t : plan.tables) {
    const std::string path = staging_dir + "/" + t.file;
    FileDescriptor fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
    if (fd.get() < 0) return output_error(path, std::string("cannot create: ") + std::strerror(errno));
    auto written = write_all(fd.get(), t.preamble.data(), t.preamble.size(), path);
    if (!written) return written;
    // Sized up front: the other ranks' pwrites land inside the file, and a short disk fails here, early.
    int rc = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(t.file_bytes()));
    if (rc == EOPNOTSUPP || rc == EINVAL) rc = ::ftruncate(fd.get(), static_cast<off_t>(t.file_bytes())) == 0 ? 0 : errno;
    if (rc != 0) return output_error(path, std::string("cannot size the file: ") + std::strerror(rc));
    if (::close(fd.release()) != 0) return output_error(path, std::string("close failed: ") + std::strerror(errno));
  }
  return Ok{};
}

Status write_hugectr_rows(const HugectrExportPlan& plan, const std::string& staging_dir, int rank, int world_size,
                          size_t buffer_bytes, bool fsync, const std::function<void(uint64_t)>& progress) {
  HugectrRows rows;
  for (const auto& t : plan.tables) {
    const RowRange mine = rows_of_rank(t.source.rows, world_size, rank);
    if (mine.count == 0) continue;
    const std::string path = staging_dir + "/" + t.file;
    FileDescriptor fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (fd.get() < 0) return output_error(path, std::string("cannot open: ") + std::strerror(errno));
    const uint64_t data = t.preamble.size();
    const uint64_t vec_bytes = t.source.vec_size * 4;
    const uint64_t row_bytes = t.source.row_bytes();
    const uint64_t piece = std::max<uint64_t>(1, buffer_bytes / row_bytes);
    HugectrRowReader reader(t.source);
    for (uint64_t first = mine.first; first < mine.first + mine.count; first += piece) {
      const uint64_t n = std::min(piece, mine.first + mine.count - first);
      auto read = reader.read(first, n, rows);
      if (!read) return read;
      auto keys = pwrite_all(fd.get(), rows.keys.data(), n * 8, data + t.tensors[0].begin + first * 8, path);
      if (!keys) return keys;
      auto vectors = pwrite_all(fd.get(), rows.vectors.data(), n * vec_bytes, data + t.tensors[1].begin + first * vec_bytes, path);
      if (!vectors) return vectors;
      if (t.source.has_slot_id) {
        auto slots = pwrite_all(fd.get(), rows.slot_ids.data(), n * 8, data + t.tensors[2].begin + first * 8, path);
        if (!slots) return slots;
      }
      if (progress) progress(n * row_bytes);
      if (auto stop = interruption()) return *stop;
    }
    if (fsync && ::fsync(fd.get()) != 0) return output_error(path, std::string("fsync failed: ") + std::strerror(errno));
    if (::close(fd.release()) != 0) return output_error(path, std::string("close failed: ") + std::strerror(errno));
  }
  return Ok{};
}

Status unpack_legacy_table(const HugectrSparseTable& table, const std::string& dir, size_t buffer_bytes) {
  if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST) {
    return output_error(dir, std::string("cannot create: ") + std::strerror(errno));
  }
  std::vector<std::unique_ptr<FileDescriptor>> files;
  std::vector<std::string> names = {dir + "/key", dir + "/emb_vector"};
  if (table.has_slot_id) names.push_back(dir + "/slot_id");
  for (const auto& name : names) {
    files.push_back(std::make_unique<FileDescriptor>(::open(name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)));
    if (files.back()->get() < 0) return output_error(name, std::string("cannot create: ") + std::strerror(errno));
  }
  HugectrRowReader reader(table);
  HugectrRows rows;
  const uint64_t piece = std::max<uint64_t>(1, buffer_bytes / std::max<uint64_t>(table.record_bytes, 1));
  for (uint64_t first = 0; first < table.rows; first += piece) {
    const uint64_t n = std::min(piece, table.rows - first);
    auto read = reader.read(first, n, rows);
    if (!read) return read;
    auto keys = write_all(files[0]->get(), rows.keys.data(), n * 8, names[0]);
    if (!keys) return keys;
    auto vectors = write_all(files[1]->get(), rows.vectors.data(), n * table.vec_size * 4, names[1]);
    if (!vectors) return vectors;
    if (table.has_slot_id) {
      auto slots = write_all(files[2]->get(), rows.slot_ids.data(), n * 8, names[2]);
      if (!slots) return slots;
    }
    if (auto stop = interruption()) return *stop;
  }
  return Ok{};
}

Result<std::vector<FileResult>> hugectr_file_results(const HugectrExportPlan& plan, const std::string& staging_dir) {
  std::vector<FileResult> results;
  for (const auto& t : plan.tables) {
    auto digest = Checksum::of_file(staging_dir + "/" + t.file, ExitCode::kOutput);
    if (!digest) return digest.error();
    if (digest.value().bytes != t.file_bytes()) {
      return output_error(staging_dir + "/" + t.file, "has " + std::to_string(digest.value().bytes) + " bytes, expected " +
                                                          std::to_string(t.file_bytes()));
    }
    FileResult r;
    r.name = t.file;
    r.source_bytes = t.source_bytes();
    r.written = true;
    r.output_bytes = digest.value().bytes;
    r.checksum = digest.value().checksum;
    r.kept = t.tensors;
    results.push_back(std::move(r));
  }
  std::sort(results.begin(), results.end(), [](const FileResult& a, const FileResult& b) { return a.name < b.name; });
  return results;
}

}  // namespace recis_convert
