#!/usr/bin/env bash
# The GPU machine's check: build nst with CUDA (-j16), run all tests, run the
# GPU tests under compute-sanitizer, run the benchmarks and the full-size
# PyTorch comparison of the feed-forward networks. Everything is logged to
# one folder, packed at the end into $OUT/logs.tar.gz (the device tool's
# output folder brings back only a few files); without $OUT, ./gpu-out.
#
# That machine has CUDA and PyTorch but not the Debian -dev packages, and has
# cuDNN's headers only in PyTorch's pip folder (see the README). What is
# missing travels in .gpu/ (git-ignored): deps.tar.xz from
# tools/pack_gpu_deps.sh, and optionally data/ (a copy of ../shared/data).
#
# usage: tools/gpu_check.sh [tests] [sanitize] [bench] [e2e] [reference] [gatys] [train] [fixtures] [largest]
#        (default: all but `largest`; `reference`, `gatys` and `train` compare with
#        independent PyTorch implementations; `e2e` times stylize, train and optimize
#        against PyTorch eager; `fixtures` writes PyTorch-made test files into the
#        logs; `largest` runs 110 L-BFGS iterations at 5120, 6144 and 7168 px
#        square, history 100 as by default, for the largest size that optimizes:
#        several minutes)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/gpu-out}
logs=$(mktemp -d)
mkdir -p "$out"
steps=${*:-tests sanitize bench e2e reference gatys train fixtures}
finish() { tar czf "$out/logs.tar.gz" -C "$logs" . ; }
trap finish EXIT

args=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_POLICY_VERSION_MINIMUM=3.5)
if [ -f .gpu/deps.tar.xz ]; then
  tar xJf .gpu/deps.tar.xz -C /tmp
  export LD_LIBRARY_PATH=/tmp/prefix/lib:${LD_LIBRARY_PATH:-}
  args+=(-DCMAKE_PREFIX_PATH=/tmp/prefix)
fi
data=${NST_DATA_DIR:-}
[ -z "$data" ] && [ -d .gpu/data ] && data=$PWD/.gpu/data
[ -n "$data" ] && args+=(-DNST_DATA_DIR="$data")
export CUDNN_ROOT=${CUDNN_ROOT:-$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || echo /opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn)}
args+=(-DCUDNN_ROOT="$CUDNN_ROOT")

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$logs/gpu.txt"
date -u +%Y-%m-%dT%H:%MZ | tee -a "$logs/gpu.txt"
cmake -S . -B build-gpu "${args[@]}" > "$logs/configure.log" 2>&1 || { tail -30 "$logs/configure.log"; exit 1; }
grep "nst:" "$logs/configure.log"
cmake --build build-gpu -j16 > "$logs/build.log" 2>&1 || { grep -E "error" "$logs/build.log" | head -40; exit 1; }

status=0
for step in $steps; do
  case $step in
    tests)
      ctest --test-dir build-gpu --output-on-failure -j4 > "$logs/ctest.log" 2>&1 || status=1
      grep -E "tests passed|Failed|FAILED|with expansion|^  [A-Za-z0-9_.(]+ .*<|Test +#" "$logs/ctest.log" | tail -40 ;;
    sanitize)
      for t in build-gpu/tests/gpu_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
        # [oom] provokes a failed cudaMalloc on purpose, which memcheck reports
        for tool in memcheck racecheck synccheck; do
          compute-sanitizer --tool $tool --error-exitcode 9 "$t" "~[oom]" > "$logs/${tool}_$name.log" 2>&1
          rc=$?
          echo "compute-sanitizer $tool $name: exit $rc; $(grep -E 'ERROR SUMMARY' "$logs/${tool}_$name.log" | tail -1)"
          [ $rc = 0 ] || { status=1; grep -m5 -A6 "Invalid\|Program hit\|Race\|Barrier" "$logs/${tool}_$name.log"; }
        done
      done ;;
    e2e)
      python3 bench/e2e_bench.py --bin build-gpu/bench/e2e_bench --json "$out/e2e_bench.json" \
        > "$logs/e2e_bench.log" 2>&1 || status=1
      cat "$logs/e2e_bench.log" | tail -20 ;;
    bench)
      build-gpu/bench/gram_bench --json "$out/gram_bench.json" > "$logs/gram_bench.log" 2>&1 || status=1
      sed -n '/^summary/,$p' "$logs/gram_bench.log"
      build-gpu/bench/norm_bench --json "$out/norm_bench.json" > "$logs/norm_bench.log" 2>&1 || status=1
      cat "$logs/norm_bench.log"
      if [ -n "${GRAM_SWEEP:-}" ]; then  # every tuning variant, for kernels/cuda/gram.cu's rules
        build-gpu/bench/gram_bench --sweep --json "$logs/gram_sweep.json" > "$logs/gram_sweep.log" 2>&1 || status=1
        sed -n '/^summary/,$p' "$logs/gram_sweep.log"; tail -3 "$logs/gram_sweep.log"
      fi ;;
    reference)
      [ -n "$data" ] || { echo "reference: no data folder"; continue; }
      ref=tools/reference/fast_style_reference.py; nets=$data/pretrained/fast-style-transfer
      r=$(mktemp -d)
      ( set -e
        python3 $ref inputs --content "$data/content" --out "$r/in"
        python3 $ref run --pretrained "$nets" --inputs "$r/in" --out "$r/ref"
        for s in $(ls "$nets"); do
          for p in fp32 fp16 bf16; do
            build-gpu/tools/nst-run stylize --model "$nets/$s" --in "$r/in" --out "$r/$p/$s" --device cuda \
              --precision $p --quiet
          done
        done
        python3 $ref compare --ref "$r/ref" --ours "$r/fp32"
        # 16-bit storage against our own fp32 (the issue's 40 dB)
        for p in fp16 bf16; do
          echo "$p against fp32:"
          python3 $ref compare --ref "$r/fp32" --ours "$r/$p" --min-psnr 40
        done ) > "$logs/reference.log" 2>&1 || status=1
      grep -E "compared|against|BELOW|MISSING|SHAPE|rror" "$logs/reference.log" | tail -30 ;;
    gatys)
      g=$(mktemp -d)
      ( set -e
        NST_GATYS_REF_OUT=$g NST_GATYS_REF_DEVICE=cuda build-gpu/tests/test_gatys "[.reference]"
        python3 tools/reference/gatys_reference.py "$g" ) > "$logs/gatys.log" 2>&1 || status=1
      tail -15 "$logs/gatys.log" ;;
    train)
      t=$(mktemp -d)
      ( set -e
        NST_TRAIN_REF_OUT=$t NST_TRAIN_REF_DEVICE=cuda build-gpu/tests/test_training "[.reference]"
        python3 tools/reference/train_reference.py "$t" ) > "$logs/train.log" 2>&1 || status=1
      grep -E "pooling|worst|nearest|checks" "$logs/train.log" ;;
    fixtures)
      python3 tools/reference/make_pth_fixtures.py "$logs/pth" > "$logs/fixtures.log" 2>&1 || status=1
      tail -5 "$logs/fixtures.log" ;;
    largest)
      for s in 5120 6144 7168; do
        build-gpu/bench/e2e_bench optimize --height $s --width $s --iters 110 --warmup 1 --tf32 \
          >> "$logs/largest.log" 2>&1 || echo "optimize at ${s}x$s failed" >> "$logs/largest.log"
      done
      cat "$logs/largest.log" ;;
  esac
done
exit $status
