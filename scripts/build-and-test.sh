#!/usr/bin/env bash
# Configures, builds (warnings are errors) and runs every test: GoogleTest units and the mpirun integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DRECIS_WERROR=ON
cmake --build build -j2
ctest --test-dir build --output-on-failure -j2
