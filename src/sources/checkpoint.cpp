#include "recis_convert/sources/checkpoint.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/fast_json.h"
#include "recis_convert/formats/strict_json.h"
#include "recis_convert/plan/slices.h"

namespace recis_convert {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxMetadataFileBytes = 1ull << 30;  // index / tensorkey.json of huge jobs stay far below this

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string join(const std::string& dir, const std::string& name) {
  return (!dir.empty() && dir.back() == '/') ? dir + name : dir + "/" + name;
}

// A name from a metadata file must be a plain file name: nothing may lead outside the checkpoint directory.
bool is_plain_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

bool is_slice(std::string_view slice) {
  int parts = 0;
  size_t start = 0;
  while (true) {
    size_t at = slice.find('@', start);
    std::string_view part = slice.substr(start, at == std::string::npos ? std::string::npos : at - start);
    if (part.empty() || part.size() > 18 || !std::all_of(part.begin(), part.end(), ::isdigit)) return false;
    ++parts;
    if (at == std::string::npos) break;
    start = at + 1;
  }
  return parts == 3;
}

// The fast readers (fast_json.h) for the common case; nullopt leaves the verdict and the message to the strict
// readers (parse_index_json, parse_tensorkey_json). The two documents as lists of views (into their texts, or into the strict readers' maps), before the join.
struct IndexViews {
  std::vector<std::string> files;                           // sorted
  std::vector<std::pair<std::string_view, uint32_t>> blocks;  // key -> position in files
};
using TensorkeyViews = std::vector<std::pair<std::string_view, std::string_view>>;

std::optional<IndexViews> recognize_index_views(const std::string& text) {
  auto doc = fast_json::read_index(text, text.capacity());
  if (!doc) return std::nullopt;
  IndexViews out;
  std::vector<std::pair<uint64_t, std::string_view>> numbers;  // file number -> name
  for (const auto& f : doc->files) {
    if (!is_plain_name(std::string(f.key))) return std::nullopt;
    numbers.emplace_back(f.value, f.key);
    out.files.emplace_back(f.key);
  }
  std::sort(numbers.begin(), numbers.end());
  for (size_t i = 1; i < numbers.size(); ++i) {
    if (numbers[i].first == numbers[i - 1].first) return std::nullopt;  // a number given twice
  }
  std::sort(out.files.begin(), out.files.end());
  out.blocks.reserve(doc->blocks.size());
  for (const auto& b : doc->blocks) {
    auto n = std::lower_bound(numbers.begin(), numbers.end(), std::pair<uint64_t, std::string_view>{b.value, {}});
    if (n == numbers.end() || n->first != b.value) return std::nullopt;
    const auto name = std::lower_bound(out.files.begin(), out.files.end(), n->second);
    out.blocks.emplace_back(b.key, static_cast<uint32_t>(name - out.files.begin()));
  }
  return out;
}

std::optional<TensorkeyViews> recognize_tensorkey_views(const std::string& text) {
  auto entries = fast_json::read_string_map(text, text.capacity());
  if (!entries) return std::nullopt;
  TensorkeyViews out;
  out.reserve(entries->size());
  for (const auto& e : *entries) {
    if (!parse_sparse_key(e.value)) return std::nullopt;
    out.emplace_back(e.key, e.value);
  }
  return out;
}

}  // namespace

Result<std::map<std::string, std::string>> parse_tensorkey_json(const std::string& text, const std::string& path) {
  auto parsed = parse_strict_json(text, path, "tensorkey.json");
  if (!parsed) return parsed.error();
  if (!parsed.value().value.is_object()) return bad_input(path, "not a JSON object");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : parsed.value().value.items()) {
    if (!value.is_string() || !parse_sparse_key(value.get<std::string>())) {
      return bad_input(path, "entry " + json(key).dump() + " is not of the form \"child@slot^b@e@size\"");
    }
    out.emplace(key, value.get<std::string>());
  }
  return out;
}

Result<IndexContents> parse_index_json(const std::string& text, const std::string& path) {
  auto parsed = parse_strict_json(text, path, "index");
  if (!parsed) return parsed.error();
  const auto& root = parsed.value().value;
  if (!root.is_object() || !root.contains("block_index") || !root.contains("file_index") ||
      !root["block_index"].is_object() || !root["file_index"].is_object()) {
    return bad_input(path, "not of the form {\"block_index\":{...},\"file_index\":{...}}");
  }
  IndexContents index;
  std::map<uint64_t, std::string> file_of_number;
  for (const auto& [name, number] : root["file_index"].items()) {
    if (!number.is_number_unsigned()) return bad_input(path, "file_index of \"" + name + "\" is not a file number");
    if (!is_plain_name(name)) return bad_input(path, "file_index names \"" + name + "\", which is not a plain file name");
    if (!file_of_number.emplace(number.get<uint64_t>(), name).second) {
      return bad_input(path, "file_index gives number " + std::to_string(number.get<uint64_t>()) + " twice");
    }
    index.files.push_back(name);
  }
  for (const auto& [key, number] : root["block_index"].items()) {
    auto file = number.is_number_unsigned() ? file_of_number.find(number.get<uint64_t>()) : file_of_number.end();
    if (file == file_of_number.end()) {
      return bad_input(path, "block_index entry " + json(key).dump() + " names no file of file_index");
    }
    index.block_file.emplace(key, file->second);
  }
  std::sort(index.files.begin(), index.files.end());
  return index;
}

Result<CheckpointBlocks> parse_checkpoint_blocks(const std::string& index_text, const std::string& index_path,
                                                 const std::string& tensorkey_text, const std::string& tensorkey_path) {
  // Each document through its fast reader, or else its strict one (whose maps the views then point into).
  IndexContents strict_index;
  std::map<std::string, std::string> strict_tensorkey;
  auto index = recognize_index_views(index_text);
  if (!index) {
    auto parsed = parse_index_json(index_text, index_path);
    if (!parsed) return parsed.error();
    strict_index = std::move(parsed).value();
    index.emplace();
    index->files = strict_index.files;
    for (const auto& [key, file] : strict_index.block_file) {
      const auto name = std::lower_bound(index->files.begin(), index->files.end(), file);
      index->blocks.emplace_back(key, static_cast<uint32_t>(name - index->files.begin()));
    }
  }
  auto tensorkey = recognize_tensorkey_views(tensorkey_text);
  if (!tensorkey) {
    auto parsed = parse_tensorkey_json(tensorkey_text, tensorkey_path);
    if (!parsed) return parsed.error();
    strict_tensorkey = std::move(parsed).value();
    tensorkey.emplace(strict_tensorkey.begin(), strict_tensorkey.end());
  }
  // Join by key: every key of either document is one block.
  auto by_key = [](const auto& a, const auto& b) { return a.first < b.first; };
  if (!std::is_sorted(index->blocks.begin(), index->blocks.end(), by_key)) {
    std::sort(index->blocks.begin(), index->blocks.end(), by_key);
  }
  if (!std::is_sorted(tensorkey->begin(), tensorkey->end(), by_key)) std::sort(tensorkey->begin(), tensorkey->end(), by_key);
  BlockCatalog::Builder builder;
  auto b = index->blocks.begin();
  auto t = tensorkey->begin();
  while (b != index->blocks.end() || t != tensorkey->end()) {
    if (t == tensorkey->end() || (b != index->blocks.end() && b->first < t->first)) {
      builder.add(b->first, b->second, {});
      ++b;
    } else if (b == index->blocks.end() || t->first < b->first) {
      builder.add(t->first, BlockCatalog::kNotIndexed, t->second);
      ++t;
    } else {
      builder.add(b->first, b->second, t->second);
      ++b;
      ++t;
    }
  }
  CheckpointBlocks out{std::move(index->files), std::move(builder).finish()};
  auto slices = check_tensorkey_slices(out.blocks, tensorkey_path);
  if (!slices) return slices.error();
  return out;
}

Status check_tensorkey_slices(const BlockCatalog& blocks, const std::string& tensorkey_path) {
  struct Part {
    std::string_view child, slot, key;
    Slice slice;
  };
  std::vector<Part> parts;
  parts.reserve(blocks.sparse_size());
  auto entry_error = [&tensorkey_path](std::string_view key, std::string_view logical, const std::string& what) {
    return bad_input(tensorkey_path, "entry " + quoted_name(key) + ": " + quoted_name(logical) + " " + what);
  };
  for (size_t i = 0; i < blocks.size(); ++i) {
    const BlockCatalog::Block block = blocks[i];
    if (block.logical.empty()) continue;
    const auto name = parse_sparse_key_view(block.logical);  // checked by the readers: never nullopt here
    if (!name) return entry_error(block.key, block.logical, "is not of the form \"child@slot^b@e@size\"");
    if (block.file == BlockCatalog::kNotIndexed) return entry_error(block.key, block.logical, "has no block in index");
    // RecIS's part key of that table's slot: "<child>.<slot>/part_<r>_<R>"
    const std::string prefix = std::string(name->child) + "." + std::string(name->slot) + "/part_";
    const std::string_view rest = block.key.substr(std::min(prefix.size(), block.key.size()));
    const size_t underscore = rest.find('_');
    const auto digits = [](std::string_view s) {
      return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (block.key.compare(0, prefix.size(), prefix) != 0 || underscore == std::string_view::npos ||
        !digits(rest.substr(0, underscore)) || !digits(rest.substr(underscore + 1))) {
      return entry_error(block.key, block.logical,
                         "names table " + quoted_name(name->child) + " slot " + quoted_name(name->slot) +
                             ", but the key is not that slot's part key " + quoted_name(prefix + "<r>_<R>"));
    }
    const auto slice = parse_slice(name->slice);
    if (!slice || slice->size != kSliceSize || slice->begin == slice->end) {
      return entry_error(block.key, block.logical,
                         "has slice " + quoted_name(name->slice) + "; RecIS writes <begin>@<end>@65536 with begin < end");
    }
    parts.push_back({name->child, name->slot, block.key, *slice});
  }
  std::sort(parts.begin(), parts.end(), [](const Part& a, const Part& b) {
    return std::tie(a.child, a.slot, a.slice.begin) < std::tie(b.child, b.slot, b.slice.begin);
  });
  for (size_t i = 0; i < parts.size(); ++i) {
    const Part& p = parts[i];
    const bool first = i == 0 || parts[i - 1].child != p.child || parts[i - 1].slot != p.slot;
    const bool last = i + 1 == parts.size() || parts[i + 1].child != p.child || parts[i + 1].slot != p.slot;
    const std::string table = "table " + quoted_name(p.child) + " slot " + quoted_name(p.slot);
    const uint32_t covered = first ? 0 : parts[i - 1].slice.end;  // ids [0, covered) are covered so far
    if (p.slice.begin < covered) {
      return bad_input(tensorkey_path, table + ": the slices of " + quoted_name(parts[i - 1].key) + " and " +
                                           quoted_name(p.key) + " overlap at id % 65536 = " +
                                           std::to_string(p.slice.begin));
    }
    if (p.slice.begin > covered) {
      return bad_input(tensorkey_path, table + ": no slice covers ids % 65536 in [" + std::to_string(covered) + ", " +
                                           std::to_string(p.slice.begin) + ") (before " + quoted_name(p.key) + ")");
    }
    if (last && p.slice.end != kSliceSize) {
      return bad_input(tensorkey_path, table + ": no slice covers ids % 65536 in [" + std::to_string(p.slice.end) +
                                           ", 65536) (after " + quoted_name(p.key) + ")");
    }
  }
  return Ok{};
}

Status check_read_unchanged(int fd, const std::string& path, const DataFile& file) {
  auto now = stamp_of(fd, path);
  if (!now) return now.error();
  return check_unchanged(file.stamp(), now.value(), path);
}

Status check_listing_unchanged(const CheckpointListing& listing) {
  for (const DataFile& file : listing.files) {
    const std::string path = join(listing.ckpt_dir, file.name);
    const auto now = regular_file_stamp(path);
    if (!now) return bad_input(path, "file changed as we read it: it is gone or no longer a regular file");
    auto unchanged = check_unchanged(file.stamp(), *now, path);
    if (!unchanged) return unchanged;
  }
  return Ok{};
}

uint32_t CheckpointListing::file_number(std::string_view name) const {
  auto it = std::lower_bound(files.begin(), files.end(), name,
                             [](const DataFile& f, std::string_view n) { return f.name < n; });
  return it != files.end() && it->name == name ? static_cast<uint32_t>(it - files.begin()) : BlockCatalog::kNotIndexed;
}

Result<std::string> latest_checkpoint_id(const std::string& text, const std::string& file) {
  std::string latest;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    const char* ws = " \t\r\n\v\f";
    size_t b = line.find_first_not_of(ws);
    if (b != std::string::npos) latest = line.substr(b, line.find_last_not_of(ws) - b + 1);
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  if (latest.empty()) return bad_input(file, "names no checkpoint (no non-empty line)");
  if (!is_plain_name(latest)) return bad_input(file, "names \"" + latest + "\", which is not a plain directory name");
  // The checkpoint id is recorded in JSON (manifest, run record, versions.json): UTF-8 only.
  if (!is_valid_utf8(latest)) return bad_input(file, "names " + quoted_name(latest) + ", which is not valid UTF-8");
  return latest;
}

std::optional<SparseKey> parse_sparse_key(std::string_view logical) {
  auto key = parse_sparse_key_view(logical);
  if (!key) return std::nullopt;
  return SparseKey{std::string(key->child), std::string(key->slot), std::string(key->slice)};
}

std::optional<SparseKeyView> parse_sparse_key_view(std::string_view logical) {
  size_t caret = logical.rfind('^');
  if (caret == std::string::npos) return std::nullopt;
  std::string_view tensor = logical.substr(0, caret);
  std::string_view slice = logical.substr(caret + 1);
  // Slot names never contain '@' (they are \w+), so the last '@' separates child and slot.
  size_t at = tensor.rfind('@');
  if (at == std::string::npos || at == 0 || at + 1 == tensor.size() || !is_slice(slice)) return std::nullopt;
  return SparseKeyView{tensor.substr(0, at), tensor.substr(at + 1), slice};
}

std::optional<KeyClass> classify_key(std::string_view key, const BlockCatalog& blocks) {
  auto block = blocks.find(key);
  return classify_key(key, block ? block->logical : std::string_view());
}

std::optional<KeyClass> classify_key(std::string_view key, std::string_view logical) {
  if (!logical.empty()) {
    auto sparse = parse_sparse_key(logical);
    if (!sparse) return std::nullopt;
    KeyClass out;
    out.sparse = true;
    out.sparse_key = *sparse;
    return out;
  }
  if (key.size() > 2 && key.substr(key.size() - 2) == "^ ") {
    KeyClass out;
    out.dense_name = std::string(key.substr(0, key.size() - 2));
    return out;
  }
  return std::nullopt;
}

Result<CheckpointListing> discover_checkpoint(const std::string& ckpt_arg) {
  CheckpointListing listing;
  listing.source = ckpt_arg;
  if (!is_directory(ckpt_arg)) return bad_input(ckpt_arg, "not a directory");

  std::string dir = ckpt_arg;
  if (!is_regular_file(join(dir, kIndexFile)) && is_regular_file(join(dir, kCheckpointListFile))) {
    // An output directory: its `checkpoint` file lists checkpoint ids, the latest last.
    const std::string list_path = join(dir, kCheckpointListFile);
    auto text = read_small_file(list_path, kMaxMetadataFileBytes);
    if (!text) return text.error();
    auto id = latest_checkpoint_id(text.value(), list_path);
    if (!id) return id.error();
    dir = join(dir, id.value());
    if (!is_directory(dir)) return bad_input(dir, "named by " + list_path + " but is not a directory");
  }
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  listing.ckpt_dir = dir;
  listing.ckpt_id = dir.substr(dir.rfind('/') == std::string::npos ? 0 : dir.rfind('/') + 1);

  // One readdir for the whole job: leftovers of an unfinished save and stray data files are found here.
  std::set<std::string> entries;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return bad_input(dir, std::string("cannot list: ") + std::strerror(errno));
  while (const dirent* e = ::readdir(d)) entries.insert(e->d_name);
  ::closedir(d);
  for (const auto& name : entries) {
    if (ends_with(name, ".tmp")) {
      return bad_input(join(dir, name), "leftover temporary file: the checkpoint save did not finish");
    }
  }
  for (const char* required : {kIndexFile, kTensorKeyFile}) {
    if (!entries.count(required) || !is_regular_file(join(dir, required))) {
      return bad_input(join(dir, required), "missing: the checkpoint is incomplete");
    }
  }
  const std::string index_path = join(dir, kIndexFile);
  const std::string tensorkey_path = join(dir, kTensorKeyFile);
  auto index_text = read_small_file(index_path, kMaxMetadataFileBytes);
  if (!index_text) return index_text.error();
  auto tensorkey_text = read_small_file(tensorkey_path, kMaxMetadataFileBytes);
  if (!tensorkey_text) return tensorkey_text.error();
  auto index = parse_checkpoint_blocks(index_text.value(), index_path, tensorkey_text.value(), tensorkey_path);
  if (!index) return index.error();

  std::set<std::string> indexed(index.value().files.begin(), index.value().files.end());
  for (const auto& name : index.value().files) {
    // RecIS names its data files model-<i>-of-<n>.safetensors, and the export keeps the names: any other name could
    // clash with a file the export writes itself (manifest.json, run_record.json, input_columns.json...).
    if (!ends_with(name, ".safetensors")) {
      return bad_input(index_path, "file_index names " + quoted_name(name) + ", which is not a .safetensors data file");
    }
    const auto stamp = entries.count(name) ? regular_file_stamp(join(dir, name)) : std::nullopt;
    if (!stamp) return bad_input(join(dir, name), "named by " + join(dir, kIndexFile) + " but missing");
    listing.files.push_back(DataFile{name, stamp->size, stamp->mtime_ns, stamp->ctime_ns});
  }
  for (const auto& name : entries) {
    if (ends_with(name, ".safetensors") && !indexed.count(name)) {
      return bad_input(join(dir, name), "data file not named by " + join(dir, kIndexFile));
    }
  }
  listing.blocks = std::move(index.value().blocks);
  return listing;
}

}  // namespace recis_convert
