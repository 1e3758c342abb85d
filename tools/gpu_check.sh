#!/usr/bin/env bash
# The GPU machine's check, made to fit its 15 minutes (machine start
# included): two calls of at most 8 minutes, the most valuable evidence
# first. Nothing is built there: tools/pack_gpu_check.sh builds the binaries
# on the development machine and packs them, the libraries the GPU machine
# lacks and the data into .gpu/ (carried). Every step runs under `timeout`
# and writes its log into $OUT as it goes (at most 8 files come back: these
# are summary.txt and one log per part, with e2e_bench.json and the benches'
# JSON); each step adds a line to $OUT/summary.txt, which is
# printed last, so a call stopped at its limit still brings back what ran.
#
#   tools/gpu_check.sh first    (1) the GPU tests: gpu_backend_ops16, gpu_precision,
#                               gpu_pipelines, gpu_backend_ops, gpu_autograd;
#                               (2) full-size stylize (two pretrained networks, two
#                               photos) in fp32, fp16 and bf16 against the PyTorch
#                               reference (50 dB), and 16-bit against fp32 (40 dB)
#   tools/gpu_check.sh second   (3) bench/e2e_bench.py --short against PyTorch eager;
#                               (4) compute-sanitizer memcheck on the tests of the
#                               kernels that have never run on a GPU;
#                               (5) video at 1080p: bench/video_bench (fp16, the wave
#                               network, 60 frames), and nst-run on a 1080p clip end to
#                               end where the machine has ffmpeg
#   tools/gpu_check.sh later    racecheck and synccheck, norm_bench and gram_bench,
#                               the Gatys and training references (a later turn)
#   tools/gpu_check.sh largest  optimization mode at 8192^2 (L-BFGS) and 16384^2 (Adam), tiled
#                               by the memory plan (a later turn; at most 9 minutes)
#
# Step limits (timeout) and durations. The durations are estimates until the
# first run on the card replaces them with what it measured:
#   first:  unpack 10 s; tests 45+45+45+80+45 s at most (estimate 3 min);
#           stylize 50+3x35+25 s at most (estimate 1 min)           -> at most 7.5 min
#   second: e2e 240 s at most (estimate 4 min); memcheck 3x40 s at most; video 50+40 s at most
#           (estimate 40 s)                                          -> at most 7.5 min
# The device time is 15 minutes in all, the machine's start included: run
# `second` when at least 7 minutes are left after `first`.
# Device tool: `run` with carry [".gpu"], timeout_s 480, command
#   bash tools/gpu_check.sh first      (then the same with `second`)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/gpu-out}
mkdir -p "$out"
summary=$out/summary.txt
work=$(mktemp -d)

# One summary line per step: name, status, seconds, a note.
record() { printf '%-34s %-5s %5ss  %s\n' "$1" "$2" "$3" "$4" | tee -a "$summary"; }
# timed LIMIT LOG COMMAND...: runs it under `timeout`, appending its output to
# LOG as it comes and keeping this step's alone in $step; sets $rc and $secs.
timed() {
  local limit=$1 log=$2
  shift 2
  local t0=$SECONDS
  echo "=== $* (limit ${limit}s)" >> "$log"
  timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$log" > "$step"
  rc=${PIPESTATUS[0]} secs=$((SECONDS - t0))
  echo "=== exit $rc after ${secs}s" >> "$log"
}
# Our binaries run with the carried libraries on LD_LIBRARY_PATH, PyTorch
# without (a global one would hand it /usr/local/cuda's cuBLAS instead of
# its wheel's).
status_of() { [ "$1" = 0 ] && echo ok || { [ "$1" = 124 ] || [ "$1" = 137 ] && echo TIME || echo FAIL; }; }

setup() {
  [ -f .gpu/bin.tar.xz ] && [ -f .gpu/deps.tar.xz ] ||
    { echo "gpu_check: .gpu/bin.tar.xz and .gpu/deps.tar.xz missing: run tools/pack_gpu_check.sh here and carry .gpu"; exit 2; }
  tar xJf .gpu/bin.tar.xz -C "$work" && tar xJf .gpu/deps.tar.xz -C "$work" || exit 2
  bin=$work/bin step=$work/step.log
  # cuDNN 9.19 (what the binaries were built with) from PyTorch's pip folder; the rest from .gpu.
  local cudnn
  cudnn=$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null ||
          echo /opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn)
  nst_libs=$cudnn/lib:/usr/local/cuda/lib64:$work/prefix/lib
  # e2e_bench.py starts e2e_bench itself: a wrapper gives it the libraries.
  mv "$bin/e2e_bench" "$bin/e2e_bench.real"
  printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec "$0.real" "$@"\n' "$nst_libs" > "$bin/e2e_bench"
  chmod +x "$bin/e2e_bench"
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  export NST_TEST_DATA=$PWD/tests/data NST_DATA_DIR=$PWD/.gpu/data
  { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    date -u +%Y-%m-%dT%H:%MZ; git log -1 --format='commit %h' 2>/dev/null; } | tee -a "$summary"
}

gpu_tests() {
  local log=$out/tests.log t limit
  for t in gpu_backend_ops16:45 gpu_precision:45 gpu_pipelines:45 gpu_backend_ops:80 gpu_autograd:45; do
    limit=${t#*:} t=${t%:*}
    timed "$limit" "$log" env LD_LIBRARY_PATH="$nst_libs" "$bin/$t"
    record "$t" "$(status_of $rc)" "$secs" "$(grep -E '^(test cases|All tests passed)' "$step" | tail -1)"
  done
}

# Full-size stylize against the independent PyTorch implementation (float64).
stylize_reference() {
  local log=$out/stylize.log ref=tools/reference/fast_style_reference.py r=$work/ref p
  local nets=.gpu/data/pretrained/fast-style-transfer
  timed 50 "$log" bash -c 'set -e
    python3 "$1" inputs --content .gpu/data/content --out "$2/in"
    python3 "$1" run --pretrained "$3" --inputs "$2/in" --out "$2/ref"' _ "$ref" "$r" "$nets"
  record "stylize: PyTorch reference" "$(status_of $rc)" "$secs" "2 networks x 2 photos, float64"
  for p in fp32 fp16 bf16; do
    timed 35 "$log" bash -c 'status=0
      for s in $(ls "$3"); do
        LD_LIBRARY_PATH=$5 "$1/nst-run" stylize --model "$3/$s" --in "$2/in" --out "$2/$4/$s" --device cuda \
          --precision "$4" --quiet || { echo "FAILED: nst-run $4 $s"; status=1; }
      done
      exit $status' _ "$bin" "$r" "$nets" "$p" "$nst_libs"
    record "stylize: nst-run $p" "$(status_of $rc)" "$secs" ""
  done
  timed 25 "$log" bash -c 'status=0
    for p in fp32 fp16 bf16; do
      echo "$p against the PyTorch reference:"; python3 "$1" compare --ref "$2/ref" --ours "$2/$p" --min-psnr 50 || status=1
    done
    for p in fp16 bf16; do
      echo "$p against fp32:"; python3 "$1" compare --ref "$2/fp32" --ours "$2/$p" --min-psnr 40 || status=1
    done
    exit $status' _ "$ref" "$r"
  record "stylize: compare" "$(status_of $rc)" "$secs" "$(grep -o 'compared, worst [-0-9.inf]* dB' "$step" | tr '\n' ';')"
}

e2e() {
  local log=$out/e2e.log
  timed 240 "$log" env PYTHONUNBUFFERED=1 python3 bench/e2e_bench.py --short --bin "$bin/e2e_bench" \
    --json "$out/e2e_bench.json"
  record "e2e_bench.py --short" "$(status_of $rc)" "$secs" "$(grep -c '| nst ' "$log") nst rows"
}

# compute-sanitizer on the tests of the kernels that never ran on a GPU
# (API errors that cuDNN and cuBLAS return and handle themselves are no
# finding: --report-api-errors no).
memcheck() {
  local log=$out/memcheck.log t
  for t in "gpu_backend_ops16:" "gpu_precision:" "gpu_backend_ops:upsample_pad_forward*,dot*,adam_step,[elementwise]"; do
    local name=${t%%:*} filter=${t#*:}
    timed 40 "$log" env LD_LIBRARY_PATH="$nst_libs" "$sanitizer" --tool memcheck --report-api-errors no \
      --error-exitcode 9 "$bin/$name" ${filter:+"$filter"}
    record "memcheck $name" "$(status_of $rc)" "$secs" "$(grep -E 'ERROR SUMMARY' "$step" | tail -1)"
  done
}

# Issue 16's figure: 1080p video at 30 frames/s or more. video_bench times
# the pipeline without the codecs (checking its frames against the
# sequential stabilizer first); nst-run the whole command on a 4-second clip,
# where ffmpeg is there to make and encode it.
video() {
  local log=$out/video.log nets=.gpu/data/pretrained/fast-style-transfer photo=.gpu/data/content/tubingen.jpg
  timed 50 "$log" env LD_LIBRARY_PATH="$nst_libs" "$bin/video_bench" --device cuda --precision fp16 --frames 60 \
    --model "$nets/wave" --image "$photo"
  record "video_bench 1080p fp16" "$(status_of $rc)" "$secs" "$(grep -o '"fps": {[^}]*}' "$step")"
  if ! command -v ffmpeg > /dev/null; then
    record "nst-run stylize 1080p clip" "skip" 0 "no ffmpeg on this machine"
    return
  fi
  timed 40 "$log" bash -c 'set -e
    ffmpeg -v error -y -loop 1 -i "$2" -vf "scale=2560:-2,crop=1920:1080:x=100+4*n:y=300" -frames:v 120 -r 30 \
      -c:v libx264 -preset ultrafast -pix_fmt yuv420p "$3/pan1080.mp4"
    for mode in frame-by-frame stabilized; do
      t0=$(date +%s.%N)
      LD_LIBRARY_PATH=$4 "$1/nst-run" stylize --model "$5/wave" --in "$3/pan1080.mp4" --out "$3/out.mp4" \
        --device cuda --precision fp16 --quiet $([ $mode = stabilized ] || echo --no-stabilize)
      awk -v m=$mode -v t0="$t0" -v t1="$(date +%s.%N)" \
        "BEGIN { printf \"%s: 120 frames in %.2f s, %.1f frames/s\n\", m, t1 - t0, 120 / (t1 - t0) }"
    done' _ "$bin" "$photo" "$work" "$nst_libs" "$nets"
  record "nst-run stylize 1080p clip" "$(status_of $rc)" "$secs" "$(grep -o '[a-z-]*: 120 frames in .*' "$step" | tr '\n' ';')"
}

later() {
  local log=$out/later.log t tool g=$work/gatys tr=$work/train
  for t in gpu_backend_ops16 gpu_precision gpu_pipelines gpu_backend_ops gpu_autograd; do
    for tool in racecheck synccheck; do
      # [oom] provokes a failed cudaMalloc on purpose
      timed 120 "$log" env LD_LIBRARY_PATH="$nst_libs" "$sanitizer" --tool $tool --error-exitcode 9 "$bin/$t" "~[oom]"
      record "$tool $t" "$(status_of $rc)" "$secs" "$(grep -E 'ERROR SUMMARY' "$step" | tail -1)"
    done
  done
  timed 120 "$log" env LD_LIBRARY_PATH="$nst_libs" "$bin/norm_bench" --json "$out/norm_bench.json"
  record "norm_bench" "$(status_of $rc)" "$secs" ""
  timed 120 "$log" env LD_LIBRARY_PATH="$nst_libs" "$bin/gram_bench" --json "$out/gram_bench.json"
  record "gram_bench" "$(status_of $rc)" "$secs" ""
  # The independent PyTorch implementations of the losses and of a training step.
  timed 120 "$log" bash -c 'set -e; mkdir -p "$2"
    NST_GATYS_REF_OUT=$2 NST_GATYS_REF_DEVICE=cuda LD_LIBRARY_PATH=$3 "$1/test_gatys" "[.reference]"
    python3 tools/reference/gatys_reference.py "$2"' _ "$bin" "$g" "$nst_libs"
  record "gatys reference" "$(status_of $rc)" "$secs" ""
  timed 120 "$log" bash -c 'set -e; mkdir -p "$2"
    NST_TRAIN_REF_OUT=$2 NST_TRAIN_REF_DEVICE=cuda LD_LIBRARY_PATH=$3 "$1/test_training" "[.reference]"
    python3 tools/reference/train_reference.py "$2"' _ "$bin" "$tr" "$nst_libs"
  record "training reference" "$(status_of $rc)" "$secs" "$(grep -E 'worst' "$step" | tail -1)"
}

# The largest optimization-mode images (issue 15's targets): nst-run's
# memory plan, then 3 iterations each, tiled as the plan decides: 8192^2 with
# L-BFGS (history 20) and 16384^2 with Adam, on a photo. The CSV logs carry
# each iteration's losses and time; the plan's predicted peak is printed.
largest() {
  local log=$out/largest.log photo=.gpu/data/content/tubingen.jpg spec
  for spec in "8192 --history 20" "16384 --optimizer adam"; do
    local size=${spec%% *} opts=${spec#* }
    # shellcheck disable=SC2086
    timed 30 "$log" env LD_LIBRARY_PATH="$nst_libs" "$bin/nst-run" optimize --content "$photo" --style "$photo" \
      --out "$work/largest_$size.png" --size "$size" --scales "$size" $opts --device cuda --plan
    record "plan ${size}^2" "$(status_of $rc)" "$secs" "$(tail -1 "$step" | cut -c1-60)"
    # shellcheck disable=SC2086
    timed 240 "$log" env LD_LIBRARY_PATH="$nst_libs" "$bin/nst-run" optimize --content "$photo" --style "$photo" \
      --out "$work/largest_$size.png" --size "$size" --scales "$size" $opts --iters 3 --device cuda \
      --log "$work/largest_$size.csv" --quiet
    cat "$work/largest_$size.csv" >> "$log" 2>/dev/null
    record "optimize ${size}^2, 3 iterations" "$(status_of $rc)" "$secs" "$(tail -1 "$work/largest_$size.csv" 2>/dev/null | cut -c1-60)"
  done
}

setup
case ${1:-} in
  first) gpu_tests; stylize_reference ;;
  second) e2e; memcheck; video ;;
  later) later ;;
  largest) largest ;;
  *) echo "usage: tools/gpu_check.sh first|second|later|largest"; exit 2 ;;
esac
echo
echo "---- summary ($1) ----"
cat "$summary"
! grep -qE ' (FAIL|TIME) ' "$summary"
