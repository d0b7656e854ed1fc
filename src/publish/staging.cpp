#include "recis_convert/publish/staging.h"

#include "recis_convert/common/file_io.h"
#include "recis_convert/publish/export_location.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

namespace recis_convert {
namespace {

constexpr const char* kStagingTag = ".recis-staging.";
constexpr size_t kPidDigits = 10;  // a pid_t's digits at most (32 bits)
constexpr const char* kAsideSuffix = ".old";  // the previous export, moved aside by --overwrite

std::string errno_text() { return std::strerror(errno); }

// This process's active staging directories (and their lock files), for remove_staging_of_stopped_run(), which
// removes the non-resumable ones. Recursive: publish() holds it and may call discard().
std::recursive_mutex g_active_mutex;
struct ActiveStaging {
  std::string lock_file;  // removed with it: the lock is still held, as when ~ExportLock removes it
  bool resumable;         // kept for the next --resume
};
std::map<std::string, ActiveStaging> g_active_staging;  // by staging path
bool g_stopped = false;  // remove_staging_of_stopped_run() ran: nothing is published any more

void set_active_staging(const std::string& path, const ExportLock& lock, bool resumable) {
  std::lock_guard<std::recursive_mutex> guard(g_active_mutex);
  g_active_staging[path] = ActiveStaging{lock.path(), resumable};
}

void append(std::vector<std::string>* to, std::vector<std::string> more) {
  if (to) to->insert(to->end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace

Status fsync_directory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return output_error(dir, "cannot open to fsync: " + errno_text());
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some filesystems (e.g. certain network mounts) do not support fsync on directories; that is not fatal.
  if (rc != 0 && err != EINVAL && err != ENOTSUP) return output_error(dir, std::string("fsync failed: ") + std::strerror(err));
  return Ok{};
}

namespace {

// "<prefix><host>.<pid>": the staging directory of a run (not --resume's ".resume", nor an ".old" set aside).
bool is_run_staging(const std::string& name, const std::string& prefix) {
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  const std::string rest = name.substr(prefix.size());
  const size_t dot = rest.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == rest.size()) return false;
  return rest.find_first_not_of("0123456789", dot + 1) == std::string::npos;
}

// Every run holds the export's lock for its staging directory's whole life (export_lock.h), so while this run holds
// it, every other "<prefix><host>.<pid>" directory beside the export belongs to a dead run, on whichever host it
// ran. (Before issue 36 liveness was judged by host and pid, which cannot see a run on another node: a node lost
// mid-export left its run's staging directory for good.) The `held` lock is the proof asked for; --resume's
// directory (".resume") is not a run's own and stays for the next --resume.
std::vector<std::string> remove_dead_run_stagings(const std::string& export_dir, const ExportLock& held,
                                                  const std::string& own) {
  (void)held;
  const SplitPath where = split_path(export_dir);
  const std::string prefix = "." + where.base + kStagingTag;
  std::vector<std::string> candidates, removed;
  if (DIR* d = ::opendir(where.parent.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string path = where.parent + "/" + e->d_name;
      if (is_run_staging(e->d_name, prefix) && path != own) candidates.push_back(path);
    }
    ::closedir(d);
  }
  for (const auto& dead : candidates) {
    if (remove_tree(dead)) removed.push_back(dead);
  }
  return removed;
}

int remove_entry(const char* path, const struct stat*, int type, struct FTW*) {
  // Keep going on errors: remove_tree checks whether anything remained.
  (type == FTW_DP) ? ::rmdir(path) : ::unlink(path);
  return 0;
}

}  // namespace

bool remove_tree(const std::string& path) {
  if (!exists(path)) return true;
  ::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  return !exists(path);
}

Result<StagingDir> StagingDir::create(const std::string& export_dir, bool overwrite,
                                      std::vector<std::string>* removed_stale) {
  auto prepared = prepare_export_location(export_dir, overwrite);
  if (!prepared) return prepared.error();
  auto lock = ExportLock::acquire(export_dir);
  if (!lock) return lock.error();
  append(removed_stale, remove_dead_run_stagings(export_dir, lock.value(), ""));
  const SplitPath where = split_path(export_dir);
  const std::string host = host_name();
  const std::string prefix = "." + where.base + kStagingTag;
  const std::string path = where.parent + "/" + prefix + host + "." + std::to_string(::getpid());
  if (::mkdir(path.c_str(), 0777) != 0) {
    return output_error(path, "cannot create the staging directory: " + errno_text());
  }
  set_active_staging(path, lock.value(), false);
  return StagingDir(export_dir, path, std::move(lock).value());
}

Result<StagingDir> StagingDir::create_resumable(const std::string& export_dir, bool overwrite,
                                                std::vector<std::string>* removed_stale, bool* existed) {
  auto prepared = prepare_export_location(export_dir, overwrite);
  if (!prepared) return prepared.error();
  auto lock = ExportLock::acquire(export_dir);
  if (!lock) return lock.error();
  append(removed_stale, remove_dead_run_stagings(export_dir, lock.value(), ""));
  const SplitPath where = split_path(export_dir);
  const std::string path = where.parent + "/." + where.base + kStagingTag + "resume";
  struct stat st {};
  *existed = ::lstat(path.c_str(), &st) == 0;
  if (*existed && !S_ISDIR(st.st_mode)) return output_error(path, "exists and is not a staging directory");
  if (!*existed && ::mkdir(path.c_str(), 0777) != 0) {
    return output_error(path, "cannot create the staging directory: " + errno_text());
  }
  set_active_staging(path, lock.value(), true);
  StagingDir staging(export_dir, path, std::move(lock).value());
  staging.resumable_ = true;
  return staging;
}

Status StagingDir::prepare_export_location(const std::string& export_dir, bool overwrite) {
  const SplitPath where = split_path(export_dir);
  if (where.base.empty() || where.base == "." || where.base == ".." || where.base == "/") {
    return output_error(export_dir, "not a usable export directory name");
  }
  // The longest name staged beside it: ".<name>.recis-staging.<host>.<pid>.old" (the previous export, moved aside
  // by --overwrite). A name that leaves no room for it is the user's to shorten: a usage error, not an output one.
  const size_t staged = 1 + where.base.size() + std::strlen(kStagingTag) + host_name().size() + 1 + kPidDigits +
                        std::strlen(kAsideSuffix);
  if (staged > NAME_MAX) {
    return usage_error("--export-dir " + export_dir + ": the name is " + std::to_string(where.base.size()) +
                       " bytes; staging it beside the export needs " + std::to_string(staged - where.base.size()) +
                       " more and a name has at most " + std::to_string(NAME_MAX));
  }
  struct stat st {};
  if (::stat(where.parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return output_error(where.parent, "parent of the export directory does not exist");
  }
  if (::lstat(export_dir.c_str(), &st) == 0) {
    if (!overwrite) return output_error(export_dir, "already exists (use --overwrite to replace it)");
    if (!S_ISDIR(st.st_mode)) return output_error(export_dir, "exists and is not a directory");
  }
  return Ok{};
}

std::vector<std::string> StagingDir::remove_dead_runs() const { return remove_dead_run_stagings(export_dir_, lock_, path_); }

StagingDir::StagingDir(StagingDir&& other) noexcept
    : export_dir_(std::move(other.export_dir_)),
      path_(std::move(other.path_)),
      lock_(std::move(other.lock_)),
      active_(other.active_),
      resumable_(other.resumable_) {
  other.active_ = false;
}

StagingDir::~StagingDir() { discard(); }

void StagingDir::discard() {
  std::lock_guard<std::recursive_mutex> lock(g_active_mutex);
  if (active_ && !resumable_) remove_tree(path_);
  if (active_) g_active_staging.erase(path_);
  active_ = false;
}

void remove_staging_of_stopped_run() {
  std::lock_guard<std::recursive_mutex> lock(g_active_mutex);
  for (const auto& [path, active] : g_active_staging) {
    if (!active.resumable) remove_tree(path);
    ::unlink(active.lock_file.c_str());
  }
  g_active_staging.clear();
  g_stopped = true;
}

Status StagingDir::publish(bool overwrite) {
  std::lock_guard<std::recursive_mutex> lock(g_active_mutex);
  if (g_stopped) {
    return output_error(path_, "the run was stopped (stall watchdog); nothing is published");
  }
  const SplitPath where = split_path(export_dir_);
  // The entries of the staging directory must be durable before the rename makes them visible as the export.
  auto synced_staging = fsync_directory(path_);
  if (!synced_staging) return synced_staging;
  if (::renameat2(AT_FDCWD, path_.c_str(), AT_FDCWD, export_dir_.c_str(), RENAME_NOREPLACE) == 0) {
    active_ = false;
    g_active_staging.erase(path_);
    return fsync_directory(where.parent);
  }
  if (errno == EEXIST || errno == ENOTEMPTY) {
    if (!overwrite) return output_error(export_dir_, "already exists (use --overwrite to replace it)");
    // Swap atomically: readers see either the old or the new export, never neither.
    if (::renameat2(AT_FDCWD, path_.c_str(), AT_FDCWD, export_dir_.c_str(), RENAME_EXCHANGE) != 0) {
      return output_error(export_dir_, "cannot swap in the new export: " + errno_text());
    }
    // path_ now holds the previous export; the destructor/discard removes it.
    auto synced = fsync_directory(where.parent);
    discard();
    return synced;
  }
  if (errno == EINVAL || errno == ENOSYS) {
    // Filesystem without renameat2 flags: fall back to a checked plain rename (not atomic against a racing run).
    if (exists(export_dir_)) {
      if (!overwrite) return output_error(export_dir_, "already exists (use --overwrite to replace it)");
      const std::string old = path_ + kAsideSuffix;
      if (::rename(export_dir_.c_str(), old.c_str()) != 0) {
        return output_error(export_dir_, "cannot move the previous export aside: " + errno_text());
      }
      if (::rename(path_.c_str(), export_dir_.c_str()) != 0) {
        std::string why = errno_text();
        ::rename(old.c_str(), export_dir_.c_str());
        return output_error(export_dir_, "cannot publish: " + why);
      }
      active_ = false;
      g_active_staging.erase(path_);
      remove_tree(old);
      return fsync_directory(where.parent);
    }
    if (::rename(path_.c_str(), export_dir_.c_str()) != 0) return output_error(export_dir_, "cannot publish: " + errno_text());
    active_ = false;
    g_active_staging.erase(path_);
    return fsync_directory(where.parent);
  }
  return output_error(export_dir_, "cannot publish: " + errno_text());
}

std::string real_location(const std::string& path) {
  std::string absolute = path;
  if (absolute.empty() || absolute[0] != '/') {
    char cwd[PATH_MAX];
    if (::getcwd(cwd, sizeof cwd)) absolute = std::string(cwd) + "/" + path;
  }
  // Resolve the longest prefix that exists; what follows it cannot hold a symlink (it does not exist yet).
  std::string rest;
  std::string head = absolute;
  char resolved[PATH_MAX];
  while (!::realpath(head.c_str(), resolved)) {
    const size_t slash = head.find_last_of('/');
    if (slash == std::string::npos || head == "/") return absolute;
    rest = head.substr(slash) + rest;
    head = slash == 0 ? "/" : head.substr(0, slash);
  }
  std::string out = std::string(resolved) == "/" ? "" : resolved;
  // "." and ".." in the part that does not exist: lexically, as the kernel would once it does
  size_t at = 0;
  while (at < rest.size()) {
    size_t next = rest.find('/', at + 1);
    const std::string part = rest.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
    if (part == "..") {
      out = out.substr(0, out.find_last_of('/') == std::string::npos ? 0 : out.find_last_of('/'));
    } else if (!part.empty() && part != ".") {
      out += "/" + part;
    }
    if (next == std::string::npos) break;
    at = next;
  }
  return out.empty() ? "/" : out;
}

Status check_apart_from_inputs(const std::string& output, const std::vector<NamedPath>& inputs) {
  if (output.empty()) return Ok{};  // an option not given
  const std::string out = real_location(output);
  // "a" is "b" or inside it
  const auto within = [](const std::string& a, const std::string& b) {
    return a == b || b == "/" || a.compare(0, b.size() + 1, b + "/") == 0;
  };
  for (const NamedPath& input : inputs) {
    if (input.path.empty()) continue;
    const std::string in = real_location(input.path);
    if (within(in, out)) {  // the same path too: --overwrite would remove the input
      return output_error(output, "contains " + input.what + " " + input.path + "; refusing to write there");
    }
    if (within(out, in)) {
      return output_error(output, "is inside " + input.what + " " + input.path + "; refusing to write there");
    }
  }
  return Ok{};
}

void warn_removed_stale(const std::vector<std::string>& paths, const Log& log) {
  for (const auto& path : paths) log.warn("removed the staging directory of a dead run: " + path);
}

}  // namespace recis_convert
