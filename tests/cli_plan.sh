#!/usr/bin/env bash
# CTest cli_plan: what --plan says, and that runs do what it said.
#  * stylize, optimize and train --plan print the memory plan and exit 0
#    without writing anything (no output, log, checkpoint, directory or
#    temporary);
#  * under a small NST_MEMORY_LIMIT stylize --plan turns to tiles, smaller
#    ones for a smaller limit, and the run under the same limit ends in the
#    plan's tiles; optimize --plan tiles too and shortens L-BFGS's history;
#  * --plan follows --tile; what fits nowhere is refused up front, and
#    tiles that cannot pay are refused with their cost.
# usage: cli_plan.sh NST_RUN FIXTURES WORKDIR
set -u
nst_run=$1 fixtures=$2 work=$3
source "$(dirname "$0")/cli_checks.sh"
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
"$fixtures" fx > /dev/null || { echo "FAIL: fixtures"; exit 1; }
# Photos larger than the fixtures', so that a small memory limit can be met by tiles.
ffmpeg -v error -y -f lavfi -i testsrc=size=320x240 -frames:v 1 small.png &&
  ffmpeg -v error -y -f lavfi -i testsrc=size=640x480 -frames:v 1 mid.png || fail "ffmpeg images"
M=fx/native.safetensors P=fx/photos/a.png S=fx/photos/b.jpg
V="--device cpu --vgg random"

# What is in the directory, run() 's own out.txt and err.txt aside.
listing() { ls -A | grep -vx -e out.txt -e err.txt; }
# plan WHAT nst-run-args...: --plan succeeds, prints a plan, and writes nothing.
plan() {
  local what=$1 was; shift
  was=$(listing)
  run 0 "$@" --plan
  expect "$what: prints the memory plan" grep -q '^memory plan: capacity' out.txt
  expect "$what: writes nothing (now: $(listing | tr '\n' ' '))" test "$(listing)" = "$was"
}
# The tile side a stylize plan in out.txt (or a run's notes in err.txt) names last.
tile_in() { grep -o 'tiles of [0-9]*' "$1" | tail -1 | grep -o '[0-9]*$'; }

# ---- each command's plan ----
plan "stylize --plan" stylize --model $M --in $P --out s.png
expect "the photo fits untiled" grep -q '^37x29, batch 1: .* -> fits' out.txt
plan "optimize --plan" optimize --content $P --style $S --out o.png --log o.csv --save-every 1 $V
expect "one line per stage of the default coarse to fine" test "$(grep -c '^stage [12]/2: ' out.txt)" = 2
plan "train --plan" train --style $P --data fx/photos --out t.safetensors --log t.csv --checkpoint-every 1 \
  --size 32 $V
expect "the style's targets and the batch fit" grep -q '^batch 4 of 32x32: .* -> fits' out.txt
was=$(listing)
run 1 stylize --model $M --in fx/photos --out styled --plan
expect "a directory has no one plan: $(cat err.txt)" grep -q -- '--plan takes an image or a video' err.txt
expect "and nothing is made for it" test "$(listing)" = "$was"

# ---- a small memory limit: tiles ----
NST_MEMORY_LIMIT=8M plan "stylize --plan under 8 MiB" stylize --model $M --in small.png --out s.png
tile8=$(tile_in out.txt)
expect "says tiles: $(tail -1 out.txt)" test -n "$tile8"
NST_MEMORY_LIMIT=6M plan "stylize --plan under 6 MiB" stylize --model $M --in small.png --out s.png
tile6=$(tile_in out.txt)
expect "a smaller limit, smaller tiles ($tile6 under 6 MiB, $tile8 under 8 MiB)" test "${tile6:-0}" -lt "${tile8:-0}"
NST_MEMORY_LIMIT=8M run 0 stylize --model $M --in small.png --out s.png
expect "the run under that limit ends in the plan's tiles of $tile8: $(tr '\n' ' ' < err.txt)" \
  test "$(tile_in err.txt)" = "$tile8"
expect "and writes its output" test -s s.png
NST_MEMORY_LIMIT=300M plan "optimize --plan under 300 MiB" optimize --content mid.png --style $S --out o.png \
  --size 512 --scales 512 $V
expect "tiles, with a shorter L-BFGS history: $(tail -1 out.txt)" \
  grep -q '^stage 1/1: 512x384: untiled .* -> tiles of [0-9]*: .*L-BFGS history [0-9]* of 100' out.txt

# ---- the user's tiles, and what cannot run ----
plan "stylize --plan --tile 256" stylize --model $M --in mid.png --out p.png --tile 256
expect "--plan follows --tile" grep -q 'tiles of 256' out.txt
expect "and gives the tiles' work" grep -q 'times the untiled work' out.txt
start=$(date +%s%N)
NST_MEMORY_LIMIT=8M run 1 stylize --model $M --in mid.png --out p.png
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect "a photo that fits nowhere is refused up front: $(cat err.txt)" grep -q 'do not fit in memory' err.txt
expect "in seconds (took $elapsed_ms ms)" test "$elapsed_ms" -lt 10000
run 1 stylize --model $M --in mid.png --out p.png --tile 44
expect "tiles that cannot pay are refused with their cost" grep -q 'would cost about [0-9]* times the untiled work .*use tiles of 48 or more' err.txt
plan "train --plan, photos too large" train --style $P --data fx/photos --out t.safetensors --size 4096 --batch 4 $V
expect "train --plan says when not even one photo fits" grep -q 'not even one photo fits at this size' out.txt

finish
