#!/usr/bin/env bash
# The GPU machine's check: build nst with CUDA (-j16), run the GPU tests, run
# them again under compute-sanitizer, run the benchmarks. Logs and JSON go to
# $OUT (the device tool's output folder) or ./gpu-out.
#
# That machine has CUDA and PyTorch but not the Debian -dev packages, and has
# cuDNN's headers only in PyTorch's pip folder (see the README). Whatever is
# missing travels in .gpu/deps.tar.xz (Catch2, stb, OpenBLAS; made by
# tools/pack_gpu_deps.sh on the development machine).
#
# usage: tools/gpu_check.sh [tests|sanitize|bench]...   (default: all three)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/gpu-out}
mkdir -p "$out"
steps=${*:-tests sanitize bench}

prefix_args=()
if [ -f .gpu/deps.tar.xz ]; then
  tar xJf .gpu/deps.tar.xz -C /tmp
  export LD_LIBRARY_PATH=/tmp/prefix/lib:${LD_LIBRARY_PATH:-}
  prefix_args=(-DCMAKE_PREFIX_PATH=/tmp/prefix)
fi
export CUDNN_ROOT=${CUDNN_ROOT:-$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || echo /opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn)}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCUDNN_ROOT="$CUDNN_ROOT" -DCMAKE_POLICY_VERSION_MINIMUM=3.5 "${prefix_args[@]}" \
  > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
grep "nst:" "$out/configure.log"
cmake --build build-gpu -j16 > "$out/build.log" 2>&1 || { grep -E "error|Error" "$out/build.log" | head -40; exit 1; }

status=0
for step in $steps; do
  case $step in
    tests)
      ctest --test-dir build-gpu --output-on-failure -j4 2>&1 | tee "$out/ctest.log" | tail -25
      [ "${PIPESTATUS[0]}" = 0 ] || status=1 ;;
    sanitize)
      for t in build-gpu/tests/gpu_*; do
        [ -x "$t" ] || continue
        for tool in memcheck; do
          compute-sanitizer --tool $tool --error-exitcode 9 "$t" > "$out/sanitize_$(basename "$t")_$tool.log" 2>&1
          rc=$?
          echo "compute-sanitizer $tool $(basename "$t"): exit $rc"; tail -3 "$out/sanitize_$(basename "$t")_$tool.log"
          [ $rc = 0 ] || status=1
        done
      done ;;
    bench)
      build-gpu/bench/gram_bench --json "$out/gram_bench.json" 2>&1 | tee "$out/gram_bench.log"
      [ "${PIPESTATUS[0]}" = 0 ] || status=1 ;;
  esac
done
exit $status
