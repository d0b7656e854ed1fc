#!/usr/bin/env bash
# Runs one libFuzzer target for SECONDS:
#   scripts/fuzz.sh fuzz_safetensors|fuzz_torch_archive|fuzz_metadata|fuzz_fast_json|fuzz_dcp SECONDS
# Builds build-fuzz/ with clang (ASan+UBSan+libFuzzer), seeds the corpus from the project's own fixtures, and keeps
# any crashing input in fuzz/crashes/ (add it to the unit tests as a regression case).
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:?target}
SECONDS_TO_RUN=${2:-60}

if [[ ! -f build-fuzz/CMakeCache.txt ]]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -DRECIS_FUZZ=ON -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build build-fuzz -j2 --target "$TARGET"

CORPUS=build-fuzz/corpus/$TARGET
SEEDS=build-fuzz/seeds
mkdir -p "$CORPUS" fuzz/crashes
if [[ ! -d $SEEDS ]]; then
  /usr/bin/python3 scripts/make_fixture.py "$SEEDS/ckpt" --steps 200 --parallel 4 >/dev/null
  /usr/bin/python3 tests/unit/make_torch_fixtures.py "$SEEDS/torch" >/dev/null
  rm -f "$SEEDS/torch/zip64.pt" "$SEEDS/torch/too_many_values.pt"  # 7 MB, and a million values per run: too big as seeds
fi
case $TARGET in
  fuzz_safetensors) cp -n "$SEEDS"/ckpt/ckpt_200/*.safetensors "$CORPUS"/ ;;
  fuzz_torch_archive) cp -n "$SEEDS"/torch/*.pt "$SEEDS"/ckpt/ckpt_200/model.pt "$SEEDS"/ckpt/dense_arch.pt "$CORPUS"/ ;;
  fuzz_metadata)
    cp -n "$SEEDS"/ckpt/ckpt_200/index "$SEEDS"/ckpt/ckpt_200/tensorkey.json "$SEEDS"/ckpt/checkpoint "$CORPUS"/
    printf '{"global_step": 100, "auc": 0.7, "loss": 0.5}\n{"global_step": 200, "auc": 0.72}\n' > "$CORPUS"/eval_log ;;
  fuzz_dcp)  # a torch 2.6 checkpoint's metadata and its hostile variants, and items: each data file's first one
    cp -n tests/fixtures/dcp-torch2.6/model/.metadata "$CORPUS"/metadata
    for f in tests/fixtures/dcp-torch2.6/hostile/*.metadata; do cp -n "$f" "$CORPUS"/hostile-"$(basename "$f")"; done
    cp -n tests/fixtures/dcp-torch2.6/model/__0_0.distcp "$CORPUS"/data0 ;;
  fuzz_fast_json)  # the documents themselves: index, tensorkey.json and the data files' header JSON
    cp -n "$SEEDS"/ckpt/ckpt_200/index "$SEEDS"/ckpt/ckpt_200/tensorkey.json "$CORPUS"/
    /usr/bin/python3 -c 'import struct,sys
for i, path in enumerate(sys.argv[2:]):
    data = open(path, "rb").read()
    open(f"{sys.argv[1]}/header{i}", "wb").write(data[8:8 + struct.unpack("<Q", data[:8])[0]])' \
      "$CORPUS" "$SEEDS"/ckpt/ckpt_200/*.safetensors ;;
esac
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
"build-fuzz/fuzz/$TARGET" "$CORPUS" -dict=fuzz/dictionary.txt -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=2048 \
  -max_len=262144 -artifact_prefix=fuzz/crashes/"$TARGET"- -print_final_stats=1
