// An export's siblings (the staging directories, the lock file and the previous export moved aside) sit in the export
// directory's parent under its base name (common/file_io.h's split_path), and some carry this host's name.
#pragma once

#include <string>

namespace recis_convert {

// This host's name, or "unknown-host".
std::string host_name();

}  // namespace recis_convert
