#!/usr/bin/env bash
# Prepares the GPU check (tools/gpu_check.sh) on the development machine:
# builds the binaries it runs here (nvcc targets sm_90; both machines are
# x86-64), strips and packs them into .gpu/bin.tar.xz, packs the libraries
# the GPU machine lacks (tools/pack_gpu_deps.sh: .gpu/deps.tar.xz) and copies
# the data its steps read into .gpu/data (two of the pretrained networks and
# two photos). .gpu/ is git-ignored; name it in the device tool's `carry`
# (under 64 MiB in all, with the working tree).
# usage: tools/pack_gpu_check.sh [BUILD_DIR (default build)] [DATA_DIR (default ../shared/data)]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build} data=${2:-../shared/data}
grep -q "^CMAKE_CUDA_COMPILER:.*nvcc" "$build/CMakeCache.txt" 2>/dev/null ||
  { echo "pack_gpu_check: $build is not a CUDA build (cmake -S . -B $build with the CUDA toolkit)"; exit 1; }
targets=(gpu_backend_ops gpu_backend_ops16 gpu_precision gpu_pipelines gpu_autograd test_gatys test_training nst-run
         e2e_bench norm_bench gram_bench video_bench)
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"
tmp=$(mktemp -d)
mkdir -p "$tmp/bin"
for f in tests/gpu_backend_ops tests/gpu_backend_ops16 tests/gpu_precision tests/gpu_pipelines tests/gpu_autograd \
         tests/test_gatys tests/test_training tools/nst-run bench/e2e_bench bench/norm_bench bench/gram_bench bench/video_bench; do
  strip -o "$tmp/bin/$(basename "$f")" "$build/$f"
done
mkdir -p .gpu
tar cJf .gpu/bin.tar.xz -C "$tmp" bin
rm -rf "$tmp"
bash tools/pack_gpu_deps.sh  # always: the libraries must match the binaries just built
rm -rf .gpu/data && mkdir -p .gpu/data/pretrained/fast-style-transfer .gpu/data/content
for s in udnie wave; do cp -r "$data/pretrained/fast-style-transfer/$s" .gpu/data/pretrained/fast-style-transfer/; done
cp "$data/content/tubingen.jpg" "$data/content/hoovertowernight.jpg" .gpu/data/content/
du -sh .gpu .gpu/*
