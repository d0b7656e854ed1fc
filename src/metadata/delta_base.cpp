#include "recis_convert/metadata/delta_base.h"

#include "recis_convert/common/file_io.h"
#include "recis_convert/sources/export_manifest.h"

namespace recis_convert {

Result<int64_t> resolve_delta_base(const std::string& since) {
  if (!since.empty() && since.find_first_not_of("0123456789") == std::string::npos) {
    if (since.size() > 18) return usage_error("--delta-since " + since + ": the step is too large");
    return static_cast<int64_t>(std::stoll(since));
  }
  if (!is_directory(since)) {
    return usage_error("--delta-since " + since + ": neither a step (a whole number) nor an export directory");
  }
  auto manifest = read_manifest_json(since);
  if (!manifest) return manifest.error();
  const std::optional<int64_t> step = whole_number_field(manifest.value(), "step");
  if (!step) {
    return bad_input(since + "/manifest.json",
                     "has no \"step\" (a whole number), so it cannot be the base of a delta: it was made "
                     "before exports recorded their step, or from a checkpoint without a global step");
  }
  return *step;
}

}  // namespace recis_convert
