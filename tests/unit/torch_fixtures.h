// Access to the torch.save files written by tests/unit/make_torch_fixtures.py (a ctest fixture step).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace recis_convert::testing {

// The fixture directory; these tests are only registered through ctest, which sets it. Missing means a broken
// build setup, which must fail rather than skip.
inline std::string torch_fixture(const std::string& name) {
  const char* dir = std::getenv("RECIS_TORCH_FIXTURES");
  if (dir == nullptr) {
    ADD_FAILURE() << "RECIS_TORCH_FIXTURES is not set: run these tests through ctest";
    return "/nonexistent/" + name;
  }
  return std::string(dir) + "/" + name;
}

}  // namespace recis_convert::testing
