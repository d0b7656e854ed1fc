// argv for parse_command_line from a list of arguments (the program name is added).
#pragma once

#include <string>
#include <vector>

#include "recis_convert/cli/cli.h"

namespace recis_convert::testing {

inline CommandLine parse(std::vector<std::string> args) {
  args.insert(args.begin(), "recis-convert");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

}  // namespace recis_convert::testing
