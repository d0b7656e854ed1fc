#!/usr/bin/env bash
# Builds recis-convert, writes the built-in example checkpoint (scripts/make_fixture.py) and converts it with
# 2 MPI ranks into an RTP delivery directory without optimizer state (configs/rtp-filtered.json).
# Run from anywhere; needs the packages of scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

cmake -S . -B build >/dev/null
cmake --build build -j2 --target recis-convert

rm -rf build/example
/usr/bin/python3 scripts/make_fixture.py build/example/checkpoints

echo "== what the checkpoint holds (recis-convert inspect, no MPI needed)"
build/recis-convert inspect build/example/checkpoints

MPIRUN=(mpirun --oversubscribe -np 2)
if [[ $(id -u) -eq 0 ]]; then MPIRUN+=(--allow-run-as-root); fi
echo
echo "== export with 2 ranks (configs/rtp-filtered.json)"
"${MPIRUN[@]}" build/recis-convert --config configs/rtp-filtered.json --report build/example/report.json

echo
echo "== verify the export against its manifest"
"${MPIRUN[@]}" build/recis-convert verify build/example/export

echo
echo "export in build/example/export:"
ls -l build/example/export
