#!/usr/bin/env bash
# CTest fuzz_replay: every fuzz target on its seeds (make_corpus.sh) and on
# the inputs that once crashed it (tests/data/fuzz/<target>/), without
# libFuzzer, in an ordinary build.
# usage: replay.sh BIN_DIR NST_CLI_FIXTURES SOURCE_DIR WORK_DIR
set -eu
bin=$1 fixtures=$2 src=$3 work=$4
bash "$src/tests/fuzz/make_corpus.sh" "$work" "$fixtures" "$src"
for target in safetensors pth manifest image; do
  inputs=("$work/$target")
  [ -d "$src/tests/data/fuzz/$target" ] && inputs+=("$src/tests/data/fuzz/$target")
  printf '%-12s ' "$target"
  "$bin/replay_$target" "${inputs[@]}"
done
