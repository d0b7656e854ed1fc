#include "recis_convert/publish/serving_root.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/strict_json.h"
#include "recis_convert/metadata/run_report.h"
#include "recis_convert/publish/staging.h"
#include "recis_convert/sources/export_manifest.h"

namespace recis_convert {
namespace {

constexpr const char* kLockFile = ".recis-lock";
constexpr uint64_t kMaxVersionsFileBytes = 64ull << 20;  // a few hundred bytes per version

std::string errno_text() { return std::strerror(errno); }

// The age order of --keep and `current`: by step (none before any), then by publish order.
struct Age {
  bool has_step;
  int64_t step;
  size_t published;
  bool operator<(const Age& o) const {
    if (has_step != o.has_step) return !has_step;
    if (has_step && step != o.step) return step < o.step;
    return published < o.published;
  }
};

Age age_of(const VersionRecord& v, size_t index) { return Age{v.step.has_value(), v.step.value_or(0), index}; }

// Whether ROOT/<version>/manifest.json says recis-convert wrote it: only such a version may be removed.
bool written_by_this_tool(const std::string& dir) {
  auto manifest = read_manifest_json(dir);
  if (!manifest || !manifest.value().is_object()) return false;
  auto tool = manifest.value().find("tool");
  return tool != manifest.value().end() && tool->is_object() && tool->value("name", "") == "recis-convert";
}

// An exclusive lock on ROOT/.recis-lock, released when the descriptor closes.
Result<std::unique_ptr<FileDescriptor>> lock_root(const std::string& root) {
  const std::string path = root + "/" + kLockFile;
  auto fd = std::make_unique<FileDescriptor>(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (fd->get() < 0) return output_error(path, "cannot open the root's lock: " + errno_text());
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  while (::fcntl(fd->get(), F_SETLKW, &lock) != 0) {
    if (errno != EINTR) return output_error(path, "cannot lock the root: " + errno_text());
  }
  return fd;
}

Status repoint_current(const std::string& root, const std::string& version) {
  const std::string link = root + "/" + kCurrentLink;
  struct stat st {};
  if (::lstat(link.c_str(), &st) == 0 && !S_ISLNK(st.st_mode)) {
    return output_error(link, "exists and is not a symlink: it is not this tool's to replace");
  }
  const std::string temporary = root + "/.current.recis-tmp." + std::to_string(::getpid());
  ::unlink(temporary.c_str());
  if (::symlink(version.c_str(), temporary.c_str()) != 0) {
    return output_error(temporary, "cannot create the symlink: " + errno_text());
  }
  if (::rename(temporary.c_str(), link.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(temporary.c_str());
    return output_error(link, "cannot repoint it: " + why);
  }
  return Ok{};
}

// Moves the version out of sight first (one rename), then removes it; false if anything remained.
bool remove_version(const std::string& root, const std::string& version) {
  const std::string aside = root + "/.recis-removing." + version + "." + std::to_string(::getpid());
  if (::rename((root + "/" + version).c_str(), aside.c_str()) != 0) return false;
  return remove_tree(aside);
}

void to_json(nlohmann::ordered_json& j, const VersionRecord& v) {
  j = {{"version", v.version}};
  j["step"] = v.step ? nlohmann::ordered_json(*v.step) : nlohmann::ordered_json(nullptr);
  j["published_at"] = v.published_at;
  j["bytes"] = v.bytes;
  j["files"] = v.files;
  j["checkpoint"] = v.checkpoint;
}

}  // namespace

Status check_version_name(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name == kCurrentLink || name == kVersionsFile ||
      name.front() == '.' || name.find('/') != std::string::npos || name.find('\0') != std::string::npos) {
    return usage_error("\"" + name + "\" cannot name a version: it must be a plain directory name, not hidden, and "
                       "not \"current\" or \"versions.json\"");
  }
  return Ok{};
}

VersionPlan plan_versions(VersionsFile before, VersionRecord added, std::optional<uint64_t> keep) {
  VersionPlan plan;
  for (auto& v : before.versions) {
    if (v.version != added.version) plan.after.versions.push_back(std::move(v));
  }
  plan.after.versions.push_back(std::move(added));
  const auto& versions = plan.after.versions;
  std::vector<size_t> order(versions.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return age_of(versions[a], a) < age_of(versions[b], b); });
  plan.after.current = versions[order.back()].version;
  if (keep && *keep >= 1 && versions.size() > *keep) {
    for (size_t k = 0; k < versions.size() - *keep; ++k) plan.remove.push_back(versions[order[k]].version);
  }
  return plan;
}

Result<VersionsFile> read_versions_file(const std::string& root) {
  const std::string path = root + "/" + kVersionsFile;
  VersionsFile out;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 && errno == ENOENT) return out;  // a root nothing was published to yet
  auto text = read_small_file(path, kMaxVersionsFileBytes);
  if (!text) return output_error(path, text.error().message);
  auto j = nlohmann::json::parse(text.value(), nullptr, false);
  auto bad = [&path](const std::string& what) { return output_error(path, "not a versions file this tool wrote: " + what); };
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  auto versions = j.find("versions");
  if (versions == j.end() || !versions->is_array()) return bad("no \"versions\" list");
  for (const auto& v : *versions) {
    if (!v.is_object() || !v.contains("version") || !v["version"].is_string()) return bad("a version without a name");
    VersionRecord r;
    r.version = v["version"].get<std::string>();
    r.step = whole_number_field(v, "step");
    r.published_at = v.value("published_at", "");
    r.bytes = static_cast<uint64_t>(whole_number_field(v, "bytes").value_or(0));
    r.files = static_cast<uint64_t>(whole_number_field(v, "files").value_or(0));
    r.checkpoint = v.value("checkpoint", "");
    out.versions.push_back(std::move(r));
  }
  out.current = j.value("current", "");
  return out;
}

std::string versions_json(const VersionsFile& versions) {
  nlohmann::ordered_json j;
  j["current"] = versions.current;
  j["versions"] = nlohmann::ordered_json::array();
  for (const auto& v : versions.versions) {
    nlohmann::ordered_json entry;
    to_json(entry, v);
    j["versions"].push_back(std::move(entry));
  }
  return j.dump(2) + "\n";
}

Status ensure_publish_root(const std::string& root) {
  struct stat st {};
  if (::stat(root.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return output_error(root, "the publish root exists and is not a directory");
    return Ok{};
  }
  if (::mkdir(root.c_str(), 0755) != 0 && errno != EEXIST) {
    return output_error(root, "cannot create the publish root: " + errno_text());
  }
  return Ok{};
}

Result<VersionsFile> record_published_version(const std::string& root, VersionRecord added, std::optional<uint64_t> keep,
                                              const Log& log) {
  auto lock = lock_root(root);
  if (!lock) return lock.error();
  auto before = read_versions_file(root);
  if (!before) return before.error();
  VersionsFile listed;
  for (auto& v : before.value().versions) {  // a version removed by hand is no longer one
    struct stat st {};
    if (v.version != added.version && ::stat((root + "/" + v.version).c_str(), &st) != 0) {
      log.warn(root + "/" + v.version + " is listed in " + kVersionsFile + " but is gone: dropped from the list");
      continue;
    }
    listed.versions.push_back(std::move(v));
  }
  VersionPlan plan = plan_versions(std::move(listed), added, keep);
  auto repointed = repoint_current(root, plan.after.current);
  if (!repointed) return repointed.error();
  if (plan.after.current != added.version) {
    log.stage(root + "/" + kCurrentLink + " stays at " + plan.after.current + ", a newer step than " + added.version);
  }
  for (const std::string& version : plan.remove) {
    const std::string dir = root + "/" + version;
    if (!written_by_this_tool(dir)) {
      log.warn("--keep: " + dir + " is not an export of this tool (its manifest.json says otherwise): kept");
      continue;
    }
    if (!remove_version(root, version)) {
      log.warn("--keep: could not remove " + dir + " whole; what remains is left as it is");
      continue;
    }
    auto& list = plan.after.versions;
    list.erase(std::remove_if(list.begin(), list.end(), [&](const VersionRecord& v) { return v.version == version; }),
               list.end());
    log.stage("--keep: removed " + dir);
  }
  auto written = write_file_atomically(root + "/" + kVersionsFile, versions_json(plan.after));
  if (!written) return written.error();
  auto synced = fsync_directory(root);
  if (!synced) return synced.error();
  return plan.after;
}

void measure_version(const std::string& dir, VersionRecord& record) {
  record.files = record.bytes = 0;
  std::error_code error;
  for (std::filesystem::recursive_directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    if (it->is_regular_file(error) && !it->is_symlink(error)) {
      ++record.files;
      record.bytes += it->file_size(error);
    }
  }
}

}  // namespace recis_convert
