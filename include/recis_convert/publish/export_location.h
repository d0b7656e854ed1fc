// Where an export's siblings are named: the staging directories, the lock file and the previous export moved aside
// all sit in the export directory's parent under its base name, and some carry this host's name.
#pragma once

#include <string>

namespace recis_convert {

struct SplitPath {
  std::string parent;  // "." for a bare name, "/" at the root
  std::string base;
};

// "a/b/c/" -> {"a/b", "c"}: trailing slashes ignored.
SplitPath split_path(std::string path);

// This host's name, or "unknown-host".
std::string host_name();

}  // namespace recis_convert
