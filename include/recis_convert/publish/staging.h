// The staging directory: all output goes to a hidden sibling of the export directory, which is renamed into place
// only when everything succeeded. A StagingDir that is destroyed without publish() removes itself, so any failure
// path leaves the export location untouched.
//
// Names: "<parent>/.<export-name>.recis-staging.<host>.<pid>". Every run holds the export's lock (export_lock.h)
// for its staging directory's life, so the next run, once it holds the lock, removes directories of that form left
// by a killed run, on whichever node it ran.
#pragma once

#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/common/log.h"
#include "recis_convert/publish/export_lock.h"

namespace recis_convert {

class StagingDir {
 public:
  // Checks the export location (parent exists; export dir absent unless overwrite), takes the export's lock
  // (another live run: kOutput), removes the staging directories of dead runs and creates a fresh staging
  // directory. Errors are kOutput.
  // `removed_stale` receives the paths of stale directories removed.
  static Result<StagingDir> create(const std::string& export_dir, bool overwrite, std::vector<std::string>* removed_stale);
  // --resume (resume_journal.h): the staging directory has the fixed name "<parent>/.<export-name>.recis-staging.resume",
  // is reused when it exists (`existed`), and is kept, not removed, when the run does not publish.
  static Result<StagingDir> create_resumable(const std::string& export_dir, bool overwrite,
                                             std::vector<std::string>* removed_stale, bool* existed);

  // Removes the staging directories of dead runs next to the export (any "<host>.<pid>" one but this run's: this
  // run holds the lock). Also called after publishing: processes of a killed job can outlive mpirun by a moment.
  std::vector<std::string> remove_dead_runs() const;

  StagingDir(StagingDir&& other) noexcept;
  StagingDir& operator=(StagingDir&&) = delete;
  StagingDir(const StagingDir&) = delete;
  ~StagingDir();

  const std::string& path() const { return path_; }
  const std::string& export_dir() const { return export_dir_; }  // where publish() puts it

  // Moves the staging directory to the export location and fsyncs the parent. Without overwrite an existing
  // export is an error (checked atomically with renameat2 RENAME_NOREPLACE). With overwrite the new export is
  // swapped in (RENAME_EXCHANGE) and only then is the old one removed.
  Status publish(bool overwrite);

  // Removes the staging directory now (also done by the destructor unless published); a resumable one stays.
  void discard();
  bool resumable() const { return resumable_; }

 private:
  StagingDir(std::string export_dir, std::string path, ExportLock lock)
      : export_dir_(std::move(export_dir)), path_(std::move(path)), lock_(std::move(lock)) {}
  // Both creations start here: the parent exists; the export directory does not, unless overwrite (and then it is
  // a directory).
  static Status prepare_export_location(const std::string& export_dir, bool overwrite);

  std::string export_dir_;
  std::string path_;
  ExportLock lock_;  // held for the staging directory's life: one run at a time per export (export_lock.h)
  bool active_ = true;
  bool resumable_ = false;
};

// Where `path` really is: the realpath of its longest existing prefix, then the rest as given. So an output that does
// not exist yet, reached through a symlinked parent, is compared where it would be written.
std::string real_location(const std::string& path);

// Outputs never land inside an input, and never hold one: the export, a publish root or a --report file inside the
// checkpoint (or a merge's base) would write into it, and --overwrite on a directory holding an input would delete
// it. Refused (kOutput, naming `output` and the input) when, resolved (real_location), `output` is an input, lies
// inside one, or holds one.
Status check_apart_from_inputs(const std::string& output, const std::vector<NamedPath>& inputs);

// The stall watchdog ends the process from its own thread while the main thread may be blocked in MPI for good, so
// no destructor runs: this removes the staging directory of a run that is being stopped that way (not --resume's,
// which is kept for the next run) and its lock file. Serialised with publish(): either the export is published, or
// it never will be.
void remove_staging_of_stopped_run();

// fsyncs a directory (its entries' renames made durable); file systems that cannot are not an error.
Status fsync_directory(const std::string& dir);

// Recursively removes a directory tree without following symlinks. Returns false if anything remained.
bool remove_tree(const std::string& path);

// Says, as a warning, which staging directories of dead runs were removed (create's `removed_stale`, or
// remove_dead_runs' result after publishing).
void warn_removed_stale(const std::vector<std::string>& paths, const Log& log);

}  // namespace recis_convert
