#include "recis_convert/commands/verify.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/common/checksum.h"
#include "recis_convert/dense/dense_plugin.h"
#include "recis_convert/sinks/file_export.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/common/interrupt.h"
#include "recis_convert/common/log.h"
#include "recis_convert/metadata/manifest.h"
#include "recis_convert/metadata/metadata.h"
#include "recis_convert/mpi/job_messages.h"
#include "recis_convert/sinks/shared_file_checksums.h"
#include "recis_convert/formats/safetensors.h"
#include "recis_convert/formats/strict_json.h"

namespace recis_convert {
namespace {

using json = nlohmann::json;

// Names of regular files under dir, relative to it, one directory level deep (the dense export folder).
std::vector<std::string> files_under(const std::string& dir, const std::string& prefix = "", int depth = 0) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    const std::string path = dir + "/" + name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode) && depth == 0) {
      for (auto& inner : files_under(path, prefix + name + "/", depth + 1)) out.push_back(std::move(inner));
    } else {
      out.push_back(prefix + name);
    }
  }
  ::closedir(d);
  return out;
}

// A text as it is made (json_text.h) against a file's bytes, a MiB at a time. A missing file matches nothing.
class FileComparingOut final : public TextOut {
 public:
  explicit FileComparingOut(const std::string& path) : in_(path, std::ios::binary) { same_ = in_.good(); }
  bool same() {
    flush();
    return same_ && in_.peek() == std::ifstream::traits_type::eof();  // and the file has nothing more
  }

 private:
  void flush() override {
    if (same_ && !text_.empty()) {
      file_bytes_.resize(text_.size());
      in_.read(file_bytes_.data(), static_cast<std::streamsize>(file_bytes_.size()));
      same_ = in_.gcount() == static_cast<std::streamsize>(text_.size()) && file_bytes_ == text_;
    }
    text_.clear();
  }
  std::ifstream in_;
  std::string file_bytes_;
  bool same_ = false;
};

}  // namespace

Result<std::vector<ManifestFile>> read_manifest_files(const std::string& export_dir) {
  const std::string path = export_dir + "/manifest.json";
  auto text = read_small_file(path, 1ull << 30);
  if (!text) return text.error();
  auto manifest = parse_strict_json(text.value(), path, "manifest");
  if (!manifest) return manifest.error();
  std::vector<ManifestFile> files;
  try {
    const nlohmann::json& root = manifest.value().value;
    const uint64_t piece_bytes =
        root.contains("checksum_piece_bytes") ? root.at("checksum_piece_bytes").get<uint64_t>() : 0;
    for (const char* list : {"data_files", "metadata_files", "asset_files"}) {
      if (std::string(list) == "asset_files" && !manifest.value().value.contains(list)) continue;  // older manifests
      for (const auto& entry : manifest.value().value.at(list)) {
        ManifestFile f;
        f.name = entry.at("name").get<std::string>();
        f.bytes = entry.at("bytes").get<uint64_t>();
        // A file of more than one piece has its pieces' checksum (manifest_version 2), any other its own; the
        // key says which, and must be the one its size calls for.
        // (A metadata file may have a whole-file checksum whatever its size.)
        f.piece_bytes = entry.contains("xxh3_64_pieces") ? piece_bytes : 0;
        const char* key = checksum_key(f.bytes, f.piece_bytes);
        const bool whole_allowed = std::string(list) != "data_files" || PieceChecksum::count(f.bytes, piece_bytes) == 1;
        if (!entry.contains(key) || (f.piece_bytes == 0 && !whole_allowed)) {
          return bad_input(path, "\"" + f.name + "\" has no valid " + checksum_key(f.bytes, piece_bytes) + " checksum");
        }
        const std::string hex = entry.at(key).get<std::string>();
        if (hex.size() != 16 || hex.find_first_not_of("0123456789abcdef") != std::string::npos) {
          return bad_input(path, "\"" + f.name + "\" has no valid xxh3_64 checksum");
        }
        f.checksum = std::stoull(hex, nullptr, 16);
        if (f.name.empty() || f.name[0] == '/' || f.name.find("..") != std::string::npos) {
          return bad_input(path, "names \"" + f.name + "\", which is not a path inside the export");
        }
        files.push_back(std::move(f));
      }
    }
  } catch (const json::exception& e) {
    return bad_input(path, std::string("not a recis-convert manifest: ") + e.what());
  }
  return files;
}

std::vector<std::string> check_unlisted_files(const std::string& export_dir, const std::vector<ManifestFile>& files) {
  std::set<std::string> listed = {"manifest.json", "run_record.json"};
  for (const auto& f : files) listed.insert(f.name);
  std::vector<std::string> problems;
  for (const auto& name : files_under(export_dir)) {
    if (!listed.count(name)) problems.push_back(export_dir + "/" + name + ": not in manifest.json");
  }
  return problems;
}

std::vector<std::string> check_metadata_files(const std::string& export_dir) {
  if (!is_regular_file(export_dir + "/" + kIndexFile)) return {};  // an HDF5 export: model.h5 has its checksum
  auto listing = discover_checkpoint(export_dir);
  if (!listing) return {listing.error().describe()};
  std::vector<FileResult> files;
  for (const auto& file : listing.value().files) {
    const std::string path = export_dir + "/" + file.name;
    auto opened = open_input_file(path);
    if (!opened) return {opened.error().describe()};
    FileDescriptor fd = std::move(opened).value();
    auto header = read_safetensors_header(fd.get(), file.size, path);
    if (!header) return {header.error().describe()};
    FileResult result;
    result.name = file.name;
    result.source_bytes = result.output_bytes = file.size;
    result.written = true;
    result.kept = std::move(header.value().tensors);
    files.push_back(std::move(result));
  }
  const BlockCatalog& blocks = listing.value().blocks;
  const std::vector<KeptTensor> kept = kept_in_key_order(files, blocks);
  std::vector<std::string> problems;
  for (const char* name : {kIndexFile, kTensorKeyFile, kTorchRankFile}) {
    FileComparingOut expected(export_dir + "/" + name);  // compared as it is made: each is ~100 MB at 1M blocks
    write_recis_metadata_file(name, files, kept, expected);
    if (!expected.same()) problems.push_back(export_dir + "/" + name + ": does not match the data files' headers");
  }
  return problems;
}

namespace {

std::vector<PiecedFile> pieced_files(const std::string& dir, const std::vector<ManifestFile>& files) {
  std::vector<PiecedFile> out;
  for (const auto& f : files) out.push_back(PiecedFile{dir + "/" + f.name, f.bytes, f.piece_bytes});
  return out;
}

// Rank 0: each file's size, and its checksum (`checksums[i]`, joined from every rank's pieces; none where a rank
// could not read it or where it is hashed elsewhere), against the manifest. `pieced[i]` is `files[i]` where it lies
// (pieced_files of its export).
std::vector<std::string> compare_checksums(const std::vector<PiecedFile>& pieced, const std::vector<ManifestFile>& files,
                                           const std::vector<PieceShare>& shares,
                                           const std::vector<std::optional<uint64_t>>& checksums) {
  std::vector<std::string> problems;
  std::set<std::string> said;
  for (const auto& share : shares) {
    for (const auto& e : share.errors) {
      if (said.insert(e.describe()).second) problems.push_back(e.describe());  // a missing file, once
    }
  }
  for (size_t i = 0; i < files.size(); ++i) {
    const ManifestFile& f = files[i];
    const std::string& path = pieced[i].path;
    uint64_t size = 0;
    if (!is_regular_file(path, &size)) continue;  // said by the rank that could not read it
    if (size != f.bytes) {
      problems.push_back(path + ": " + std::to_string(size) + " bytes, manifest.json says " + std::to_string(f.bytes));
      continue;
    }
    if (!checksums[i]) continue;
    if (*checksums[i] != f.checksum) {
      problems.push_back(path + ": checksum " + Checksum::hex(*checksums[i]) + ", manifest.json says " +
                         Checksum::hex(f.checksum));
    }
  }
  return problems;
}

}  // namespace

std::vector<std::string> check_manifest_file(const std::string& export_dir, const ManifestFile& file) {
  const auto pieced = pieced_files(export_dir, {file});
  const std::vector<PieceShare> shares{read_piece_share(pieced, 1, 0)};
  return compare_checksums(pieced, {file}, shares, join_piece_shares(pieced, shares));
}

Result<ManifestCheck> check_manifest_checksums(Comm& world, const std::vector<std::string>& dirs,
                                               const std::set<std::string>& hashed_elsewhere) {
  // 1. the manifests, read once on rank 0
  auto listed = broadcast_result<std::vector<std::vector<ManifestFile>>>(
      world,
      [&]() -> Result<std::vector<std::vector<ManifestFile>>> {
        std::vector<std::vector<ManifestFile>> out;
        for (const auto& dir : dirs) {
          auto files = read_manifest_files(dir);
          if (!files) return files.error();
          out.push_back(std::move(files).value());
        }
        return out;
      },
      "manifest-files");
  if (!listed) return listed.error();
  ManifestCheck out;
  out.files = std::move(listed).value();
  std::vector<PiecedFile> pieced;
  std::vector<ManifestFile> files;
  for (size_t d = 0; d < dirs.size(); ++d) {
    for (auto& p : pieced_files(dirs[d], out.files[d])) pieced.push_back(std::move(p));
    files.insert(files.end(), out.files[d].begin(), out.files[d].end());
  }
  // 2. every rank reads a share of the files' pieces (but those hashed elsewhere); 3. rank 0 compares
  std::vector<PiecedFile> read;
  for (const auto& p : pieced) {
    if (!hashed_elsewhere.count(p.path)) read.push_back(p);
  }
  PieceShare share = read_piece_share(read, world.size(), world.rank());
  const int agreed = world.agree_on_status(share.interrupted() ? static_cast<int>(ExitCode::kInterrupted) : 0).status;
  auto gathered = gather_to_root(world, std::move(share), "verify-pieces");
  if (agreed == static_cast<int>(ExitCode::kInterrupted)) return Error{ExitCode::kInterrupted, "", "interrupted"};
  if (world.is_root()) {
    if (!gathered) return gathered.error();
    const auto joined = join_piece_shares(read, gathered.value());
    std::vector<std::optional<uint64_t>> checksums;
    for (size_t i = 0, r = 0; i < pieced.size(); ++i) {
      checksums.push_back(hashed_elsewhere.count(pieced[i].path) ? std::nullopt : joined[r++]);
    }
    out.problems = compare_checksums(pieced, files, gathered.value(), checksums);
  }
  return out;
}

ExitCode run_verify(const VerifyOptions& o, Comm& world) {
  Log log(world.rank(), o.quiet, false);
  // 1. the manifest and every file's size and checksum, the pieces shared among the ranks
  auto checked = check_manifest_checksums(world, {o.export_dir});
  int status = checked ? 0 : static_cast<int>(checked.error().code);
  if (world.is_root() && !checked && checked.error().code != ExitCode::kInterrupted) {
    Log::error(checked.error().describe());
  }

  // 2. rank 0: the rest, then every problem
  if (world.is_root() && status == 0) {
    const std::vector<ManifestFile>& files = checked.value().files[0];
    std::vector<std::string> all = std::move(checked.value().problems);
    for (auto& p : check_unlisted_files(o.export_dir, files)) all.push_back(std::move(p));
    for (auto& p : check_metadata_files(o.export_dir)) all.push_back(std::move(p));
    uint64_t bytes = 0;
    for (const auto& f : files) bytes += f.bytes;
    std::string dense_note;
    for (const auto& f : files) {
      const std::string suffix = "/sample_io.safetensors";
      if (f.name.size() <= suffix.size() || f.name.compare(f.name.size() - suffix.size(), suffix.size(), suffix) != 0) {
        continue;
      }
      const std::string folder = f.name.substr(0, f.name.size() - suffix.size());
      std::vector<std::string> models;
      for (const auto& g : files) {
        if (g.name.compare(0, folder.size() + 1, folder + "/") == 0 && g.name.size() > 3 &&
            g.name.compare(g.name.size() - 3, 3, ".pt") == 0) {
          models.push_back(g.name);
        }
      }
      if (models.size() != 1) {
        all.push_back(o.export_dir + "/" + folder + ": expected one .pt model next to sample_io.safetensors, found " +
                      std::to_string(models.size()));
        continue;
      }
      auto check = run_dense_verify(o.export_dir + "/" + models[0], o.export_dir + "/" + f.name);
      if (!check) {
        all.push_back(check.error().describe());
        continue;
      }
      if (!check.value().not_scored.empty()) {  // checksums hold; only this libtorch is too old to re-score
        dense_note = "; " + models[0] + " not re-scored: " + check.value().not_scored;
        continue;
      }
      for (const auto& p : check.value().problems) all.push_back(o.export_dir + "/" + models[0] + ": " + p);
      char note[128];
      std::snprintf(note, sizeof note, "; %s re-scored: %zu outputs, max |diff| %.3g", models[0].c_str(),
                    check.value().outputs, check.value().max_diff);
      dense_note = note;
    }
    for (const auto& p : all) Log::error(p);
    if (all.empty()) {
      log.stage("verify: " + o.export_dir + ": " + std::to_string(files.size()) + " files, " +
                format_bytes(static_cast<double>(bytes)) + " on " + std::to_string(world.size()) +
                " ranks: checksums, file list and metadata match manifest.json" + dense_note);
    } else {
      Log::error("verify: " + o.export_dir + ": " + std::to_string(all.size()) + " problem(s)");
      status = static_cast<int>(ExitCode::kBadInput);
    }
  } else if (world.is_root() && status == static_cast<int>(ExitCode::kInterrupted)) {
    Log::error("verify interrupted");
  }
  auto verdict = broadcast_value(world, status, "verdict");
  return static_cast<ExitCode>(verdict ? verdict.value() : static_cast<int>(ExitCode::kInternal));
}

}  // namespace recis_convert
