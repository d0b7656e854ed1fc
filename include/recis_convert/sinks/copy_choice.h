// How the copy engine moves bytes that pass unchanged, chosen per file system (issue 19). The best path differs:
// - where copy_file_range shares extents (XFS and btrfs reflink, NFS server-side copy...), the kernel copy moves
//   no data, so hashing the source is the only pass over it; the copy goes in large chunks;
// - where it copies data (tmpfs, ext4, and any other file system), the kernel copies in cache-sized windows while
//   a helper thread hashes each window just copied, so the hash reads the source from the CPU cache, not memory;
// - between two file systems copy_file_range is refused or splices through the page cache, so a read/write loop
//   hashes each window between its read and its write; so it does where the rank may use only one CPU (mpirun
//   binds each rank to one core by default), since there the hashing thread would take turns with the copy.
// The choice is a pure function of the two file systems (unit-tested); filesystem_of() is its only I/O.
#pragma once

#include <cstdint>
#include <string>

#include "recis_convert/common/error.h"

namespace recis_convert {

enum class CopyMethod { kAuto, kKernel, kBuffered };  // --copy-method

enum class CopyPath {
  kKernelWindows,  // copy_file_range in cache-sized windows, each hashed just after on a helper thread
  kKernelExtents,  // copy_file_range in buffer-sized chunks; the source hashed alongside, by pieces on each CPU
  kBuffered,       // pread a window, hash it, pwrite it: one thread, the window in cache throughout
};

struct FileSystem {
  int64_t type = 0;     // statfs f_type
  uint64_t device = 0;  // st_dev: the same for two paths on one mount
};

struct CopyChoice {
  CopyPath path = CopyPath::kBuffered;
  std::string why;  // one line for the run record
};

// The statfs type's usual name ("tmpfs", "ext4", "xfs", ...), or its magic number in hex.
std::string filesystem_name(int64_t type);
// Whether copy_file_range on one file system of this type can share extents or copy on the server.
bool shares_extents(int64_t type);

// The path for copying from `source` into `destination` by a rank that may run on `cpus` CPUs. kKernel keeps
// copy_file_range even between file systems and on one CPU (the engine falls back to kBuffered if the kernel
// refuses); kBuffered is always kBuffered.
CopyChoice choose_copy_path(CopyMethod method, const FileSystem& source, const FileSystem& destination,
                            unsigned cpus);

const char* copy_path_name(CopyPath path);  // "kernel-windows", "kernel-extents", "buffered"

// The CPUs this process may run on (its affinity mask: mpirun's --bind-to, Slurm's --cpus-per-task).
unsigned usable_cpus();

// statfs and stat of an existing path; errors name it (kind `on_error`).
Result<FileSystem> filesystem_of(const std::string& path, ExitCode on_error);

// The choice for copying files of source_dir into export_dir, by their file systems and usable_cpus(). Where one
// cannot be stat'ed, it is taken for both on one file system of unknown type, saying so.
CopyChoice choose_copy_path_for(CopyMethod method, const std::string& source_dir, const std::string& export_dir);

}  // namespace recis_convert
