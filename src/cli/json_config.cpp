#include "recis_convert/cli/json_config.h"

#include <nlohmann/json.hpp>

#include "recis_convert/formats/strict_json.h"

namespace recis_convert {
namespace {
constexpr size_t kMaxConfigBytes = 16u << 20;
}

std::vector<CLI::ConfigItem> StrictJsonConfig::from_config(std::istream& input) const {
  const std::string path = app_.get_config_ptr()->as<std::string>();
  std::string text;
  text.resize(kMaxConfigBytes + 1);
  input.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(input.gcount()));
  if (text.size() > kMaxConfigBytes) throw CLI::ConfigError(path + ": the job config is larger than 16 MiB");
  auto parsed = parse_strict_json(text, path, "job config");
  if (!parsed) throw CLI::ConfigError(parsed.error().describe());
  const nlohmann::json& config = parsed.value().value;
  if (!config.is_object()) throw CLI::ConfigError(path + ": the job config is not a JSON object");
  std::vector<CLI::ConfigItem> config_items;
  for (auto entry = config.begin(); entry != config.end(); ++entry) {
    const std::string& key = entry.key();
    const nlohmann::json& value = entry.value();
    auto problem = [&](const std::string& what) { return CLI::ConfigError(path + ": \"" + key + "\" " + what); };
    const CLI::Option* option = app_.get_option_no_throw("--" + key);
    if (option == nullptr) throw CLI::ConfigError(path + ": unknown key \"" + key + "\" in the job config");
    if (!option->get_configurable() || option->get_group().empty() || key == "help" || key == "version") {
      throw problem("cannot be set in the job config");
    }
    CLI::ConfigItem item;
    item.name = key;
    if (option->get_expected_min() == 0) {  // a flag
      if (!value.is_boolean()) throw problem("must be true or false in the job config");
      item.inputs = {value.get<bool>() ? "true" : "false"};
    } else if (option->get_expected_max() > 1) {  // repeatable
      if (!value.is_array()) throw problem("must be a list of strings in the job config");
      for (const auto& element : value) {
        if (!element.is_string()) throw problem("must be a list of strings in the job config");
        item.inputs.push_back(element.get<std::string>());
      }
      if (item.inputs.empty()) continue;  // an empty list is the default, and CLI11 wants at least one value
    } else if (value.is_string()) {
      item.inputs = {value.get<std::string>()};
    } else if (value.is_number()) {
      item.inputs = {value.dump()};
    } else {
      throw problem("must be a string or a number in the job config");
    }
    config_items.push_back(std::move(item));
  }
  return config_items;
}

}  // namespace recis_convert
