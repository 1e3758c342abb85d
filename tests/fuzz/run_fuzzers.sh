#!/usr/bin/env bash
# Fuzzes the readers of untrusted files with libFuzzer (clang, AddressSanitizer):
# safetensors, .pth checkpoints, the TensorFlow export manifest, images.
# Builds build-fuzz/ (CPU only), seeds each target from the tests' files and
# runs it for SECONDS (default 180); what libFuzzer finds interesting is kept
# in build-fuzz/grown/<target> for the next run. A crash leaves its input in
# build-fuzz/findings/<target>/; copy it to tests/data/fuzz/<target>/ with
# the fix, and CTest's fuzz_replay keeps it fixed.
# usage: tests/fuzz/run_fuzzers.sh [SECONDS]   (from the repository root)
set -eu
seconds=${1:-180}
command -v clang++ > /dev/null || { echo "run_fuzzers.sh: clang++ is needed (apt install clang)"; exit 1; }
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DNST_FUZZ=ON -DNST_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_safetensors fuzz_pth fuzz_manifest fuzz_image nst_cli_fixtures
bash tests/fuzz/make_corpus.sh build-fuzz/corpus build-fuzz/tools/nst_cli_fixtures .
status=0
for target in safetensors pth manifest image; do
  mkdir -p "build-fuzz/findings/$target" "build-fuzz/grown/$target"
  extra=()
  [ -d "tests/data/fuzz/$target" ] && extra=("tests/data/fuzz/$target")
  echo "== fuzz_$target for ${seconds}s"
  if ! "build-fuzz/tests/fuzz_$target" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 \
       -artifact_prefix="build-fuzz/findings/$target/" "build-fuzz/grown/$target" "build-fuzz/corpus/$target" \
       "${extra[@]}" \
       > "build-fuzz/fuzz_$target.log" 2>&1; then
    echo "fuzz_$target FOUND A CRASH: see build-fuzz/fuzz_$target.log and build-fuzz/findings/$target/"
    status=1
  fi
  grep -E '^#[0-9]+.*(DONE|pulse)' "build-fuzz/fuzz_$target.log" | tail -1
done
exit $status
