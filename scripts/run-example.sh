#!/usr/bin/env bash
# Builds recis-convert, writes the built-in example checkpoint (scripts/make_fixture.py) and runs the whole job on
# it with 2 MPI ranks: the sparse tables without optimizer state (configs/rtp-filtered.json), the dense network
# as frozen TorchScript (the fixture's scripted architecture with the checkpoint's model.pt weights), metadata and
# the manifest, then verify.
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
echo "== export with 2 ranks (configs/rtp-filtered.json, and the dense network)"
"${MPIRUN[@]}" build/recis-convert --config configs/rtp-filtered.json \
  --dense-model build/example/checkpoints/dense_arch.pt --outputs ctr,cvr --report build/example/report.json

echo
echo "== verify the export against its manifest (and re-score the dense network on its sample inputs)"
"${MPIRUN[@]}" build/recis-convert verify build/example/export

echo
echo "export in build/example/export:"
ls -l build/example/export build/example/export/fx_user_model
