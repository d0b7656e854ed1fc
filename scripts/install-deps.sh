#!/usr/bin/env bash
# Installs every Debian package recis-convert needs to build, test and benchmark.
# Idempotent: apt-get skips what is already installed. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake pkg-config time
  # the decided stack
  libopenmpi-dev openmpi-bin
  libtorch-dev
  libhdf5-openmpi-dev
  nlohmann-json3-dev
  libgtest-dev libgmock-dev
  libbenchmark-dev
  # CLI11: a maintained argument parser (help text, config-less subcommands, validation) instead of hand-rolled argv code
  libcli11-dev
  # zlib: CRC-32 checks of torch.save zip entries (already a libtorch dependency; named here explicitly)
  zlib1g-dev
  # xxHash: XXH3-64 checksums of exported files at memory speed (a hand-written hash would be slower and unreviewed)
  libxxhash-dev
  # simdjson: the checkpoint's index and tensorkey.json (1M blocks: 135 MB) and the data files' headers, parsed
  # on demand at GB/s into compact types; nlohmann's DOM costs ~250 bytes and several allocations per value
  libsimdjson-dev
  # fuzzing (libFuzzer) and sanitizer builds: clang and its runtime libraries
  clang libclang-rt-14-dev
  # tests and fixtures only: Debian's python3 with torch, numpy and h5py
  python3 python3-torch python3-numpy python3-h5py python3-xxhash
  # tests only: a one-node Slurm on localhost (scripts/slurm-local.sh); debootstrap for the torch 2.x root
  slurm-wlm munge debootstrap
  # tests only: groff renders the generated manual page (docs_test.py)
  groff-base
  # tests only: the simulated cluster's namespaces, bridge and cables (scripts/sim-cluster.sh: ip, nsenter, unshare)
  iproute2 util-linux
  # tests only: Universal Ctags finds every function's extent for the design's rules (scripts/architecture_stats.py)
  universal-ctags
)

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
