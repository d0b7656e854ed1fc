// The --config reader for CLI11: strict JSON (no duplicate keys), one object whose keys are the long option names.
// Each key becomes a CLI11 config item, which CLI11 then applies through the very option the flag defines: the
// same check or choice table, and options given on the command line win. Only the JSON types are checked here:
// flags take true or false, repeatable options a list of strings, the others a string or a number.
#pragma once

#include <CLI/CLI.hpp>
#include <istream>
#include <string>
#include <vector>

namespace recis_convert {

class StrictJsonConfig : public CLI::Config {
 public:
  explicit StrictJsonConfig(const CLI::App& app) : app_(app) {}

  std::string to_config(const CLI::App*, bool, bool, std::string) const override { return ""; }  // not used
  // Errors are CLI::ConfigError naming the file and the key.
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;

 private:
  const CLI::App& app_;
};

}  // namespace recis_convert
