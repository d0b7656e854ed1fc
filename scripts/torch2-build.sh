#!/usr/bin/env bash
# Builds recis-convert and its dense plugin inside the torch 2.x root (scripts/torch2-root.sh), against that root's
# Debian libtorch 2.6 (find_package(Torch) finds it as it would a site's own libtorch through Torch_DIR), and runs
# the torch 2.x tests with that build: there the plugin freezes and scores modules with ops libtorch 1.13 lacks.
#   scripts/torch2-build.sh     (after scripts/torch2-root.sh create; .ci/run runs both; about 6-8 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_SH=scripts/torch2-root.sh
REPO=$(pwd -P)

# the root's own build tools and libraries, from Debian 13's packages (the same list as install-deps.sh, minus tests)
$ROOT_SH run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  build-essential cmake pkg-config libtorch-dev nlohmann-json3-dev zlib1g-dev libopenmpi-dev openmpi-bin \
  libhdf5-openmpi-dev libcli11-dev libxxhash-dev libsimdjson-dev python3-h5py python3-xxhash >/dev/null
$ROOT_SH run cmake -S "$REPO" -B "$REPO/build-torch2" -DBUILD_TESTING=OFF -DRECIS_BUILD_BENCHMARKS=OFF \
  -DRECIS_WERROR=ON >/dev/null
$ROOT_SH run cmake --build "$REPO/build-torch2" -j2 --target recis-convert

work=$REPO/build-torch2/work
rm -rf "$work"
run_test() {  # SCRIPT CASE NP: an integration script inside the root, with the root's build
  $ROOT_SH run env RECIS_IN_TORCH2_ROOT=1 RECIS_EXPECT_FROZEN=1 python3 "$REPO/tests/integration/$1" "$2" \
    --binary "$REPO/build-torch2/recis-convert" --fixture "$REPO/tests/fixtures/recis-v1.1-real" \
    --work "$work/$1-$2-np$3" --np "$3"
}
for np in 1 3; do
  run_test torch2_test.py dense $np
  run_test torch2_test.py archive $np
  run_test real_recis_test.py dense $np
done
echo "torch2-build.sh: the converter built against libtorch 2.6 passed the torch 2.x tests"
