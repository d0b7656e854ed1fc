#include "recis_convert/publish/export_location.h"

#include <unistd.h>

namespace recis_convert {

std::string host_name() {
  char name[256] = {0};
  if (::gethostname(name, sizeof name - 1) != 0) return "unknown-host";
  return name;
}

}  // namespace recis_convert
