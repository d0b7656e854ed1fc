// --publish-root: a versioned serving root, as TorchEasyRec publishes (a directory per version, a pointer to the
// current one, the last K kept). Each run publishes ROOT/<version> through the staging directory as any export,
// then, holding a lock on ROOT/.recis-lock (fcntl, so it holds across the nodes of a shared file system):
//   1. records the version in ROOT/versions.json (steps, times, sizes; replaced by rename);
//   2. repoints ROOT/current, a relative symlink replaced by rename, so a reader never sees it missing or partial;
//   3. with --keep K, removes the oldest versions beyond K.
// `current` names the newest version by step, not simply the last published: a rerun of an older checkpoint must
// not turn the serving fleet back (ties and unknown steps go to the later publish). Only versions that
// versions.json lists and whose manifest says this tool wrote them are ever removed, never the current one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/common/log.h"

namespace recis_convert {

inline constexpr const char* kCurrentLink = "current";
inline constexpr const char* kVersionsFile = "versions.json";

struct VersionRecord {
  std::string version;          // the directory's name in the root
  std::optional<int64_t> step;  // the export's step (manifest "step"), when known
  std::string published_at;     // UTC, ISO 8601
  uint64_t bytes = 0;           // every file of the version
  uint64_t files = 0;
  std::string checkpoint;       // the source it was exported from
};

// ROOT/versions.json: the versions in publish order, and the one `current` names.
struct VersionsFile {
  std::vector<VersionRecord> versions;
  std::string current;
};

// A version name is one plain path component that is not the root's own: not empty, ".", "..", "current",
// "versions.json", hidden (the staging directories are), nor holding '/'. Else a usage error.
Status check_version_name(const std::string& name);

// What publishing `added` does to the root (pure): the list with `added` last (replacing a record of the same
// name), the version `current` names, and with `keep` the versions to remove, oldest first. "Oldest" orders by
// step, then by publish order; a version without a step is older than any with one.
struct VersionPlan {
  VersionsFile after;
  std::vector<std::string> remove;
};
VersionPlan plan_versions(VersionsFile before, VersionRecord added, std::optional<uint64_t> keep);

// The root's versions.json (an absent file is an empty root); an unreadable one is kOutput naming it.
Result<VersionsFile> read_versions_file(const std::string& root);
std::string versions_json(const VersionsFile& versions);

// Creates ROOT if it is missing (its parent must exist); kOutput otherwise.
Status ensure_publish_root(const std::string& root);

// Steps 1-3 above, once ROOT/<added.version> is published. Removals that fail are warnings (the new version is
// published and current); anything else is kOutput naming the file.
Result<VersionsFile> record_published_version(const std::string& root, VersionRecord added, std::optional<uint64_t> keep,
                                              const Log& log);

// The files and bytes under a published version (for its record).
void measure_version(const std::string& dir, VersionRecord& record);

}  // namespace recis_convert
