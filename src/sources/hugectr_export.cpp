#include "recis_convert/sources/hugectr_export.h"

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

#include "recis_convert/common/checksum.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/hugectr_graph.h"
#include "recis_convert/common/interrupt.h"
#include "recis_convert/publish/staging.h"
#include "recis_convert/formats/strict_json.h"

namespace recis_convert {

Result<RowTables> describe_hugectr_model(const JobOptions& o, const RowTransformChain& transforms) {
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
  RowTables model;
  model.source_path = o.graph;
  model.ckpt_id = "hugectr";
  std::set<std::string> names;
  for (size_t i = 0; i < g.embeddings.size(); ++i) {
    const HugectrEmbedding& e = g.embeddings[i];
    RowTable t;
    t.name = o.table_names.empty() ? e.top : o.table_names[i];
    if (t.name.empty() || t.name.find_first_of("/@^.") != std::string::npos || !names.insert(t.name).second) {
      return usage_error("table name \"" + t.name + "\" is empty, repeated, or holds one of / @ ^ .");
    }
    auto source = describe_hugectr_sparse(o.sparse[i], e.vec_size, HugectrLegacyLayout{g.legacy_key_bytes, e.localized});
    if (!source) return source.error();
    t.source.of = source.value();
    if (e.localized && !t.source.has_slot_id()) {
      return bad_input(o.sparse[i], "has no slot_id file, but " + e.top + " is a localized embedding");
    }
    t.file = row_table_file_name(i, g.embeddings.size());
    model.tables.push_back(std::move(t));
  }
  auto laid_out = lay_out_row_tables(model, transforms);
  if (!laid_out) return laid_out.error();
  return model;
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

namespace {
// Legacy tables unpacked for --format hdf5 live in the staging directory under this prefix until publish.
constexpr const char* kUnpackedPrefix = ".hugectr-unpacked-";

bool is_legacy(const RowTable& t) {
  const HugectrSparseTable* h = t.source.hugectr();
  return h && h->format == HugectrSparseFormat::kLegacyFile;
}

std::string hugectr_table_dir(const RowTable& t, const std::string& staging_dir) {
  // a legacy table's interleaved records are unpacked into plain arrays
  return is_legacy(t) ? staging_dir + "/" + kUnpackedPrefix + t.name : resolved_path(t.source.path());
}

}  // namespace

std::string hugectr_slot_path(const RowTable& t, const RowTableSlot& slot,
                              const std::string& staging_dir) {
  return hugectr_table_dir(t, staging_dir) + "/" + slot.source_file;
}

Status unpack_if_legacy(const RowTable& t, const std::string& staging_dir, size_t buffer_bytes) {
  if (!is_legacy(t)) return Ok{};
  return unpack_legacy_table(*t.source.hugectr(), hugectr_table_dir(t, staging_dir), buffer_bytes);
}

void remove_unpacked_tables(const RowTables& model, const std::string& staging_dir) {
  for (const auto& t : model.tables) {
    if (is_legacy(t)) remove_tree(staging_dir + "/" + kUnpackedPrefix + t.name);
  }
}

}  // namespace recis_convert
