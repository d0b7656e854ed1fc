#include "recis_convert/common/error.h"

#include <nlohmann/json.hpp>

namespace recis_convert {

std::string quoted_name(std::string_view name) { return nlohmann::json(name).dump(); }

}  // namespace recis_convert
