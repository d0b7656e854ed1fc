#include "recis_convert/commands/inspect.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include <set>

#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/sources/dcp_checkpoint.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/common/log.h"
#include "recis_convert/formats/safetensors.h"
#include "recis_convert/formats/strict_json.h"
#include "recis_convert/formats/torch_archive.h"
#include "recis_convert/transforms/quantization_error.h"

namespace recis_convert {
namespace {

// The states RecIS's sparse optimizers save, each as "sparse_<optimizer>_<state>" (a slot or a dense scalar).
constexpr const char* kOptimizerStates[] = {"_exp_avg_sq", "_exp_avg", "_beta1", "_beta2", "_step"};

// "sparse_adamw_exp_avg" or "sparse_adamw_step" -> "adamw"; "sparse_adamw_tf_exp_avg" -> "adamw_tf" (SparseAdamWTF:
// the optimizer's own name may hold '_', so the known state is cut off the end, not the name at its first '_').
std::string optimizer_of(const std::string& name) {
  const std::string prefix = "sparse_";
  if (name.compare(0, prefix.size(), prefix) != 0) return "";
  for (const std::string state : kOptimizerStates) {
    if (name.size() > prefix.size() + state.size() && name.compare(name.size() - state.size(), state.size(), state) == 0) {
      return name.substr(prefix.size(), name.size() - prefix.size() - state.size());
    }
  }
  const size_t end = name.find('_', prefix.size());  // a state this tool does not know: the name up to its first '_'
  return name.substr(prefix.size(), end == std::string::npos ? std::string::npos : end - prefix.size());
}

std::string spaced_shape_text(const std::vector<uint64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// An HDF5 export has no index: its manifest describes the tables.
Result<Inspection> inspect_hdf5_export(const std::string& path, Inspection out) {
  const std::string manifest_path = path + "/manifest.json";
  auto text = read_small_file(manifest_path, 1u << 30);
  if (!text) return text.error();
  auto manifest = parse_strict_json(text.value(), manifest_path, "manifest");
  if (!manifest) return manifest.error();
  out.manifest = manifest.value().value;
  try {
    for (const auto& [child, t] : out.manifest.at("tables").items()) {
      InspectedTable table;
      table.child = child;
      table.rows = t.at("rows").get<uint64_t>();
      table.dim = t.at("dim").get<uint64_t>();
      table.dtype = t.at("dtype").get<std::string>();
      table.parts = t.at("parts").get<uint64_t>();
      for (const auto& slot : t.at("slots")) table.slot_bytes[slot.get<std::string>()] = 0;  // sizes not recorded
      out.tables.push_back(table);
    }
    out.slot_sizes_known = false;
    out.ckpt_dir = path;
    out.selection = "an HDF5 export (model.h5); tables from its manifest.json";
  } catch (const nlohmann::json::exception& e) {
    return bad_input(manifest_path, std::string("not a recis-convert manifest: ") + e.what());
  }
  struct stat st {};
  if (::stat((path + "/model.h5").c_str(), &st) == 0) {
    out.data_files = 1;
    out.data_bytes = static_cast<uint64_t>(st.st_size);
  }
  return out;
}

// An export's tables converted to a serving dtype, with what it cost (manifest.json), a line each, as the closing
// summary of the export printed them.
std::string quantized_tables_text(const nlohmann::json& manifest) {
  if (!manifest.is_object() || !manifest.contains("tables") || !manifest["tables"].is_object()) return "";
  std::string out;
  for (const auto& [child, t] : manifest["tables"].items()) {
    if (!t.is_object() || !t.contains("quantization_error")) continue;
    const nlohmann::json& e = t["quantization_error"];
    QuantizationFigures f;
    f.max_abs = e.value("max_abs", 0.0);
    f.mean_abs = e.value("mean_abs", 0.0);
    f.rmse = e.value("rmse", 0.0);
    f.max_row_rel_l2 = e.value("max_row_rel_l2", 0.0);
    out += "    " + child + ": " + t.value("source_dtype", std::string("?")) + " dim " +
           std::to_string(t.value("dim", uint64_t{0})) + " -> " + t.value("quantization", std::string("?")) + ", " +
           describe(f) + "\n";
  }
  return out.empty() ? out : "  quantized tables (error against the source rows):\n" + out;
}

// An export's tables that eviction rules thinned (manifest.json), a line each: the rows left out, and the global
// step the step rule measured against.
std::string evicted_tables_text(const nlohmann::json& manifest) {
  if (!manifest.is_object() || !manifest.contains("tables") || !manifest["tables"].is_object()) return "";
  std::string out;
  for (const auto& [child, t] : manifest["tables"].items()) {
    if (!t.is_object() || !t.contains("evicted_rows")) continue;
    out += "    " + child + ": " + t["evicted_rows"].dump() + " rows left out";
    if (t.contains("global_step") && t["global_step"].is_object()) {
      out += ", global step " + t["global_step"].value("step", nlohmann::json()).dump() + " (" +
             t["global_step"].value("from", std::string("?")) + ")";
    }
    out += "\n";
  }
  return out.empty() ? out : "  evicted rows:\n" + out;
}

// An export's kind and step (manifest.json): "full export at step 200", or what a delta holds and which tables
// it carries whole. Empty for exports made before the manifest recorded them.
std::string export_kind_text(const nlohmann::json& manifest) {
  if (!manifest.is_object() || !manifest.contains("kind")) return "";
  const nlohmann::json step = manifest.value("step", nlohmann::json());
  if (manifest["kind"] != "delta") {
    std::string merged;  // a merge's inputs: the base, then the deltas
    const nlohmann::json inputs = manifest.value("merged_from", nlohmann::json());
    if (inputs.is_array() && !inputs.empty() && inputs[0].is_string()) {
      merged = ", merged from " + inputs[0].get<std::string>() + " and " + std::to_string(inputs.size() - 1) +
               " delta(s)";
    }
    return "  full export" + (step.is_number_integer() ? " at step " + step.dump() : std::string(", step unknown")) +
           merged + "\n";
  }
  std::string whole;
  if (manifest.contains("tables") && manifest["tables"].is_object()) {
    for (const auto& [child, t] : manifest["tables"].items()) {
      if (t.is_object() && t.value("delta", std::string()) == "full") whole += (whole.empty() ? "" : ", ") + child;
    }
  }
  return "  delta: the rows updated after step " + manifest.value("base_step", nlohmann::json()).dump() +
         ", up to step " + step.dump() + "\n" + (whole.empty() ? "" : "    whole (no step_filter): " + whole + "\n");
}

// id, embedding, then the other slots by name (as manifest.json lists them).
std::vector<std::string> ordered_slots(const InspectedTable& table) {
  std::vector<std::string> out;
  for (const char* first : {"id", "embedding"}) {
    if (table.slot_bytes.count(first)) out.push_back(first);
  }
  for (const auto& [slot, bytes] : table.slot_bytes) {
    if (slot != "id" && slot != "embedding") out.push_back(slot);
  }
  return out;
}

}  // namespace

// A Distributed Checkpoint: its metadata only (the data files are never opened).
Result<Inspection> inspect_dcp_checkpoint(const DcpLocation& location, Inspection out) {
  auto metadata = read_dcp_metadata(location.dcp_dir);
  if (!metadata) return metadata.error();
  std::set<std::string> files;
  for (const DcpTensor& t : metadata.value().tensors) {
    for (const DcpChunk& c : t.chunks) files.insert(c.file);
  }
  auto described = describe_dcp_checkpoint(location, std::move(metadata).value());
  if (!described) return described.error();
  out.kind = "DCP checkpoint";
  out.ckpt_dir = location.dcp_dir;
  out.selection = location.step ? "step " + std::to_string(*location.step) + ", " + location.checkpoint_dir : "given";
  for (const auto& name : files) {
    uint64_t size = 0;
    if (!is_regular_file(location.dcp_dir + "/" + name, &size)) {
      return bad_input(location.dcp_dir + "/" + name, "named by the checkpoint's .metadata but missing");
    }
    ++out.data_files;
    out.data_bytes += size;
  }
  auto bytes_of = [](const DcpTensor& t) { return t.numel() * dtype_bits(t.dtype) / 8; };
  for (const DcpTable& t : described.value().tables) {
    InspectedTable table;
    table.child = t.name;
    table.rows = t.weight.shape[0];
    table.dim = t.weight.shape[1];
    table.dtype = dtype_spelling(t.weight.dtype);
    table.parts = 1;  // one part, as the export writes it unless --reshard
    table.slot_bytes["embedding"] = bytes_of(t.weight);
    table.layout = dcp_table_layout(t.weight);
    for (const DcpTensor& buffer : t.managed_collision) table.managed_collision.push_back(buffer.fqn);
    out.tables.push_back(std::move(table));
  }
  out.dense_file = location.dcp_dir;
  for (const DcpTensor& t : described.value().dense) {
    out.dense.push_back({t.fqn, dtype_torch_name(t.dtype), t.shape, bytes_of(t)});
  }
  return out;
}

Result<Inspection> inspect_path(const std::string& path) {
  Inspection out;
  out.path = path;
  out.manifest = nullptr;
  if (!is_regular_file(path + "/" + kIndexFile) && !is_regular_file(path + "/" + kCheckpointListFile)) {
    if (auto dcp = locate_dcp_checkpoint(path)) return inspect_dcp_checkpoint(dcp.value(), std::move(out));
  }
  if (is_regular_file(path + "/manifest.json") && !is_regular_file(path + "/" + kIndexFile)) {
    out.kind = "export";
    return inspect_hdf5_export(path, std::move(out));
  }
  auto listing = discover_checkpoint(path);
  if (!listing) return listing.error();
  const CheckpointListing& l = listing.value();
  out.ckpt_dir = l.ckpt_dir;
  out.selection = is_regular_file(path + "/" + kIndexFile) ? "given" : "the latest, named last in " + path + "/" + kCheckpointListFile;
  out.kind = is_regular_file(l.ckpt_dir + "/manifest.json") ? "export" : "checkpoint";
  if (out.kind == "export") {
    auto text = read_small_file(l.ckpt_dir + "/manifest.json", 1u << 30);
    if (!text) return text.error();
    auto manifest = parse_strict_json(text.value(), l.ckpt_dir + "/manifest.json", "manifest");
    if (!manifest) return manifest.error();
    out.manifest = manifest.value().value;
  }

  std::map<std::string, InspectedTable> tables;
  for (const auto& file : l.files) {
    const std::string file_path = l.ckpt_dir + "/" + file.name;
    auto opened = open_input_file(file_path);
    if (!opened) return opened.error();
    FileDescriptor fd = std::move(opened).value();
    auto header = read_safetensors_header(fd.get(), file.size, file_path);
    if (!header) return header.error();
    ++out.data_files;
    out.data_bytes += file.size;
    for (const auto& tensor : header.value().tensors) {
      auto key = classify_key(tensor.name, l.blocks);
      if (!key) return bad_input(file_path, "tensor \"" + tensor.name + "\" is neither in tensorkey.json nor dense");
      if (!key->sparse) {
        out.scalars.push_back({key->dense_name, tensor.dtype_spelling, tensor.shape, tensor.nbytes()});
        if (out.optimizer.empty()) out.optimizer = optimizer_of(key->dense_name);
        continue;
      }
      InspectedTable& table = tables[key->sparse_key.child];
      table.child = key->sparse_key.child;
      const std::string& slot = key->sparse_key.slot;
      table.slot_bytes[slot] += tensor.nbytes();
      if (slot == "id" && !tensor.shape.empty()) {
        table.rows += tensor.shape[0];
        ++table.parts;
      }
      if (slot == "embedding" && !tensor.shape.empty()) {
        table.dim = tensor.shape.back();
        table.dtype = tensor.dtype_spelling;
      }
      if (out.optimizer.empty()) out.optimizer = optimizer_of(slot);
    }
  }
  for (auto& [child, table] : tables) out.tables.push_back(std::move(table));

  const std::string model = l.ckpt_dir + "/model.pt";
  if (is_regular_file(model)) {
    auto state = read_torch_state_dict(model);
    if (!state) return state.error();
    out.dense_file = model;
    for (const auto& t : state.value().tensors) {
      out.dense.push_back({t.name, dtype_torch_name(t.dtype), t.shape, t.numel() * dtype_bits(t.dtype) / 8});
    }
  }
  return out;
}

std::string inspection_text(const Inspection& in) {
  std::ostringstream s;
  s << in.kind << " " << in.ckpt_dir << " (" << in.selection << ")\n";
  s << "  data files: " << in.data_files << ", " << format_bytes(static_cast<double>(in.data_bytes)) << "\n";
  s << "  optimizer: " << (in.optimizer.empty() ? "none found" : in.optimizer) << "\n";
  if (!in.manifest.is_null() && in.manifest.contains("options")) {
    const nlohmann::json tool = in.manifest.value("tool", nlohmann::json::object());
    s << "  made by recis-convert " << tool.value("version", std::string("?")) << " from "
      << in.manifest["source"].value("checkpoint", std::string("?")) << ", options " << in.manifest["options"].dump()
      << "\n";
  }
  s << export_kind_text(in.manifest);
  s << "  tables: " << in.tables.size() << "\n";
  char line[512];
  std::snprintf(line, sizeof line, "    %-24s %12s %6s %6s %6s  %s\n", "table", "rows", "dim", "dtype", "parts",
                "bytes per slot");
  s << line;
  for (const auto& t : in.tables) {
    std::string slots;
    for (const auto& slot : ordered_slots(t)) {
      slots += (slots.empty() ? "" : ", ") + slot;
      if (in.slot_sizes_known) slots += " " + format_bytes(static_cast<double>(t.slot_bytes.at(slot)));
    }
    std::snprintf(line, sizeof line, "    %-24s %12llu %6llu %6s %6llu  ", t.child.c_str(),
                  static_cast<unsigned long long>(t.rows), static_cast<unsigned long long>(t.dim), t.dtype.c_str(),
                  static_cast<unsigned long long>(t.parts));
    s << line << slots << (t.layout.empty() ? "" : ", " + t.layout) << "\n";
    for (const auto& buffer : t.managed_collision) s << "      managed collision: " << buffer << "\n";
  }
  s << quantized_tables_text(in.manifest);
  s << evicted_tables_text(in.manifest);
  if (!in.scalars.empty()) {
    s << "  dense tensors in the data files: " << in.scalars.size() << "\n";
    for (const auto& t : in.scalars) s << "    " << t.name << " " << t.dtype << " " << spaced_shape_text(t.shape) << "\n";
  }
  if (!in.dense_file.empty()) {
    uint64_t bytes = 0;
    for (const auto& t : in.dense) bytes += t.bytes;
    s << "  dense tensors in " << (in.kind == "DCP checkpoint" ? "the checkpoint" : "model.pt") << ": " << in.dense.size() << ", " << format_bytes(static_cast<double>(bytes)) << "\n";
    for (const auto& t : in.dense) s << "    " << t.name << " " << t.dtype << " " << spaced_shape_text(t.shape) << "\n";
  } else {
    s << "  model.pt: none\n";
  }
  return s.str();
}

nlohmann::ordered_json inspection_json(const Inspection& in) {
  nlohmann::ordered_json j;
  j["path"] = in.path;
  j["kind"] = in.kind;
  j["dir"] = in.ckpt_dir;
  j["selection"] = in.selection;
  j["optimizer"] = in.optimizer.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(in.optimizer);
  j["data_files"] = in.data_files;
  j["data_bytes"] = in.data_bytes;
  nlohmann::ordered_json tables = nlohmann::ordered_json::object();
  for (const auto& t : in.tables) {
    nlohmann::ordered_json slots = nlohmann::ordered_json::object();
    for (const auto& slot : ordered_slots(t)) {
      slots[slot] = in.slot_sizes_known ? nlohmann::ordered_json(t.slot_bytes.at(slot)) : nlohmann::ordered_json();
    }
    tables[t.child] = {{"rows", t.rows}, {"dim", t.dim}, {"dtype", t.dtype}, {"parts", t.parts}, {"slot_bytes", slots}};
    if (!t.layout.empty()) {
      tables[t.child]["layout"] = t.layout;
      tables[t.child]["managed_collision"] = t.managed_collision;
    }
  }
  j["tables"] = tables;
  auto tensors = [](const std::vector<InspectedTensor>& list) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& t : list) out.push_back({{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}, {"bytes", t.bytes}});
    return out;
  };
  j["scalars"] = tensors(in.scalars);
  j["dense_file"] = in.dense_file.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(in.dense_file);
  j["dense"] = tensors(in.dense);
  if (!in.manifest.is_null()) j["manifest"] = in.manifest;
  return j;
}

}  // namespace recis_convert
