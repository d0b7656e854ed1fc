#include "recis_convert/sinks/copy_choice.h"

#include <sched.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

namespace recis_convert {
namespace {

struct KnownFileSystem {
  int64_t type;
  const char* name;
  bool shares_extents;  // copy_file_range within it need not move the data (reflink or server-side copy)
};

// statfs magic numbers (linux/magic.h and the file systems' own headers).
const std::vector<KnownFileSystem> kKnown = {
    {0x01021994, "tmpfs", false},    {0xEF53, "ext4", false},          {0x58465342, "xfs", true},
    {0x9123683E, "btrfs", true},     {0xCA451A4E, "bcachefs", true},   {0x7461636F, "ocfs2", true},
    {0x6969, "nfs", true},           {0xFE534D42, "smb2", true},       {0x00C36400, "ceph", true},
    {0x2FC12FC1, "zfs", false},      {0x0BD00BD0, "lustre", false},    {0x47504653, "gpfs", false},
    {0x19830326, "beegfs", false},   {0x794C7630, "overlayfs", false}, {0xF2F52010, "f2fs", false},
    {0x65735546, "fuse", false},     {0x858458F6, "ramfs", false}};

const KnownFileSystem* known(int64_t type) {
  for (const auto& fs : kKnown) {
    if (fs.type == type) return &fs;
  }
  return nullptr;
}

}  // namespace

std::string filesystem_name(int64_t type) {
  if (const auto* fs = known(type)) return fs->name;
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(type));
  return hex;
}

bool shares_extents(int64_t type) {
  const auto* fs = known(type);
  return fs != nullptr && fs->shares_extents;
}

const char* copy_path_name(CopyPath path) {
  switch (path) {
    case CopyPath::kKernelWindows: return "kernel-windows";
    case CopyPath::kKernelExtents: return "kernel-extents";
    case CopyPath::kBuffered: return "buffered";
  }
  return "unknown";
}

CopyChoice choose_copy_path(CopyMethod method, const FileSystem& source, const FileSystem& destination,
                            unsigned cpus) {
  const std::string from = filesystem_name(source.type), to = filesystem_name(destination.type);
  if (method == CopyMethod::kBuffered) return {CopyPath::kBuffered, "--copy-method buffered"};
  const bool one_file_system = source.device == destination.device;
  if (one_file_system && shares_extents(destination.type)) {
    return {CopyPath::kKernelExtents,
            "source and export on one " + to + " file system, where copy_file_range can share extents or copy on "
            "the server: hashing the source is the only pass over the data"};
  }
  if (one_file_system && cpus < 2 && method == CopyMethod::kAuto) {
    // Measured (4.2 GiB in tmpfs, one rank bound to one core): kernel-windows 1.5-1.75 s, buffered 1.3 s.
    return {CopyPath::kBuffered,
            "source and export on one " + to + " file system, but this rank may use only one CPU (mpirun binds "
            "each rank to a core by default), where a hashing thread would take turns with the copy: a read/write "
            "loop hashes each window in cache (give ranks two CPUs, e.g. mpirun --bind-to none, for kernel-windows)"};
  }
  if (one_file_system || method == CopyMethod::kKernel) {
    return {CopyPath::kKernelWindows,
            (method == CopyMethod::kKernel ? "--copy-method kernel; " : "") +
                (one_file_system ? "source and export on one " + to + " file system"
                                 : "source on " + from + ", export on " + to) +
                ", where copy_file_range copies the data: the source is hashed in cache-sized windows as they are "
                "copied"};
  }
  return {CopyPath::kBuffered, "source on " + from + " and export on " + to +
                                   " are different file systems, between which copy_file_range is refused or "
                                   "splices through the page cache: a read/write loop hashes each window in cache"};
}

unsigned usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return static_cast<unsigned>(CPU_COUNT(&set));
}

Result<FileSystem> filesystem_of(const std::string& path, ExitCode on_error) {
  struct statfs fs {};
  struct stat st {};
  if (::statfs(path.c_str(), &fs) != 0 || ::stat(path.c_str(), &st) != 0) {
    return Error{on_error, path, std::string("cannot stat: ") + std::strerror(errno)};
  }
  return FileSystem{static_cast<int64_t>(fs.f_type), static_cast<uint64_t>(st.st_dev)};
}

CopyChoice choose_copy_path_for(CopyMethod method, const std::string& source_dir, const std::string& export_dir) {
  auto source = filesystem_of(source_dir, ExitCode::kBadInput);
  auto destination = filesystem_of(export_dir, ExitCode::kOutput);
  if (!source || !destination) {
    CopyChoice choice = choose_copy_path(method, FileSystem{}, FileSystem{}, usable_cpus());
    choice.why = "file system unknown (" + (source ? destination : source).error().describe() + "); " + choice.why;
    return choice;
  }
  return choose_copy_path(method, source.value(), destination.value(), usable_cpus());
}

}  // namespace recis_convert
