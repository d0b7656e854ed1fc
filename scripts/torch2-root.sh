#!/usr/bin/env bash
# A Debian 13 (trixie) root with Debian's python3-torch 2.6, for the tests that need a real torch 2.x: it writes the
# torch 2.x fixtures (model.pt, scripted dense archs) and loads and scores the exports, as a user's torch would.
#
#   scripts/torch2-root.sh create           build the root once (debootstrap, ~2-5 min, 1.5 GB); a no-op when it exists
#   scripts/torch2-root.sh python ARGS...   run the root's python3 with ARGS
#   scripts/torch2-root.sh run CMD ARGS...  run any command of the root (e.g. its apt-get, cmake)
#   scripts/torch2-root.sh path             print the root's path, or exit 1 when it has not been built
#
# The root lives in $RECIS_TORCH2_ROOT (default /var/cache/recis-convert/trixie-torch2), outside the clone, so a CI
# machine that keeps /var/cache reuses it. `python` runs in a private mount namespace (nothing leaks to the host)
# where /proc, /sys, /dev, /tmp, this repository and the colon-separated directories of $RECIS_TORCH2_BIND are
# bound at their own paths, so the same file names work inside and out. Needs root (debootstrap, unshare, chroot).
set -euo pipefail

ROOT=${RECIS_TORCH2_ROOT:-/var/cache/recis-convert/trixie-torch2}
MIRROR=${RECIS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
REPO=$(cd "$(dirname "$0")/.." && pwd -P)

create() {
  if [[ -x "$ROOT/usr/bin/python3" ]]; then return 0; fi
  command -v debootstrap >/dev/null || apt-get install -y -q --no-install-recommends debootstrap
  # built beside its final place and renamed when complete, so a root that exists is a whole one
  rm -rf "$ROOT.partial"
  mkdir -p "$(dirname "$ROOT")"
  debootstrap --variant=minbase --include=python3-torch,python3-numpy trixie "$ROOT.partial" "$MIRROR"
  rm -rf "$ROOT.partial"/var/cache/apt/archives/*.deb
  mv "$ROOT.partial" "$ROOT"
}

run_in_root() {
  [[ -x "$ROOT/usr/bin/python3" ]] || { echo "torch2-root.sh: no root at $ROOT; run 'create' first" >&2; exit 1; }
  local binds="/proc:/sys:/dev:/tmp:$REPO${RECIS_TORCH2_BIND:+:$RECIS_TORCH2_BIND}"
  # the child shell gets the root, the directories, the working directory and the arguments as parameters
  exec unshare --mount --propagation private sh -c '
    root=$1; binds=$2; cwd=$3; shift 3
    IFS=:
    for dir in $binds; do
      [ -d "$dir" ] || continue
      mkdir -p "$root$dir"
      mount --rbind "$dir" "$root$dir"
    done
    unset IFS
    exec chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 \
      sh -c "cd \"\$0\" && exec \"\$@\"" "$cwd" "$@"
  ' sh "$ROOT" "$binds" "$PWD" "$@"
}

case ${1:-} in
  create) create ;;
  python) shift; run_in_root python3 "$@" ;;
  run) shift; run_in_root "$@" ;;
  path) [[ -x "$ROOT/usr/bin/python3" ]] && echo "$ROOT" ;;
  *) echo "usage: $0 create | python ARGS... | run CMD ARGS... | path" >&2; exit 2 ;;
esac
