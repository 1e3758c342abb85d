#!/usr/bin/env bash
# CTest cli_failed_runs: what a run that fails, is interrupted or is killed
# outright leaves behind (plans: cli_plan).
#  * a failed run leaves the user's existing log as it was; a finished or
#    interrupted one puts its log in place;
#  * SIGTERM during a long tiled stylization ends it within seconds, with no
#    output and no temporary;
#  * temporaries that a SIGKILL left (the dead process's PID in their
#    names) are removed by the next run writing there, and nothing else is;
#  * --resume refuses another set of photos of the same size.
# usage: cli_failed_runs.sh NST_RUN FIXTURES WORKDIR
set -u
set -m  # background runs get SIGINT/SIGTERM as a terminal's would
nst_run=$1 fixtures=$2 work=$3
source "$(dirname "$0")/cli_checks.sh"
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
"$fixtures" fx > /dev/null || { echo "FAIL: fixtures"; exit 1; }
# terminate WHAT PID: SIGTERM, then the run must end with status 1 within 3 s
terminate() {
  local what=$1 pid=$2 start status elapsed_ms
  start=$(date +%s%N)
  kill -TERM "$pid"; wait "$pid"; status=$?
  elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  expect "SIGTERM ends $what with an error (status $status)" test "$status" = 1
  expect "$what: within 3 s of SIGTERM (took $elapsed_ms ms)" test "$elapsed_ms" -lt 3000
}
M=fx/native.safetensors P=fx/photos/a.png S=fx/photos/b.jpg
O="--size 32 --device cpu --vgg random --quiet"

# ---- logs: in place only after a run that finished or was interrupted ----
printf 'my,own\n1,2\n' > mine.csv && cp mine.csv mine.orig
run 0 optimize --content $P --style $S --out o.png --iters 3 --log mine.csv $O
expect "a finished optimization's log replaces the old one" test "$(wc -l < mine.csv)" = 4
expect "its header" grep -q '^iteration,stage' mine.csv
cp mine.orig mine.csv
run 1 optimize --content $P --style $S --out o.png --iters 3 --log mine.csv --tile 16 $O
expect "an optimization refused before it starts leaves the log" cmp -s mine.csv mine.orig
ffmpeg -v error -y -f lavfi -i testsrc=size=64x48:rate=8 -frames:v 12 -pix_fmt yuv420p long.mp4 &&
  ffmpeg -v error -y -f lavfi -i testsrc=size=64x48:rate=8 -frames:v 6 -pix_fmt yuv420p short.mp4 || fail "ffmpeg clips"
run 1 video-metrics --in long.mp4 --stylized short.mp4 --csv mine.csv
expect "video-metrics on clips of different lengths leaves the CSV" cmp -s mine.csv mine.orig
mkdir broken && cp fx/bad/empty.png fx/bad/text.png broken/
run 1 train --style $P --data broken --out t.safetensors --iters 2 --log mine.csv $O
expect "a training on unreadable photos leaves the log" cmp -s mine.csv mine.orig
# Interrupted: the log of the steps done, beside the checkpoint.
"$nst_run" train --style $P --data fx/photos --out int.safetensors --iters 100000 --checkpoint-every 0 \
  --log mine.csv $O > out.txt 2> err.txt &
pid=$!
for _ in $(seq 100); do [ -e int.ckpt.safetensors ] || [ -n "$(ls -A .mine.tmp-* 2> /dev/null)" ] && break; sleep 0.1; done
sleep 1
kill -INT $pid; wait $pid
expect "an interrupted training has its checkpoint" test -s int.ckpt.safetensors
expect "and its log, one row a step" test "$(wc -l < mine.csv)" -ge 2 -a "$(head -1 mine.csv | cut -c1-5)" = step,
expect "no temporary left" test -z "$(ls -A .*.tmp-* 2> /dev/null)"

# ---- signals: a tiled stylization stops between layers ----
ffmpeg -v error -y -f lavfi -i testsrc=size=1600x1200 -frames:v 1 big.png || fail "ffmpeg big.png"
"$nst_run" stylize --model $M --in big.png --out big_out.png --tile 128 --quiet > out.txt 2> err.txt &
sleep 2
terminate "a tiled stylization" $!
expect "no output" test ! -e big_out.png
expect "no temporary" test -z "$(ls -A .big_out* 2> /dev/null)"

# An optimization in tiles stops between tiles and keeps the last completed iteration's image.
"$nst_run" optimize --content big.png --style $S --out opt.png --scales 640 --tile 128 --iters 1000 \
  --log opt.csv --device cpu --vgg random --quiet > out.txt 2> err.txt &
pid=$!
# Once the first iteration is logged, the second is under way, tile by tile.
for _ in $(seq 1200); do [ "$(cat .opt.tmp-* 2> /dev/null | wc -l)" -ge 2 ] && break; sleep 0.1; done
sleep 1
terminate "a tiled optimization" $pid
expect "saving the image so far: $(cat err.txt)" grep -q 'interrupted after iteration [1-9][0-9]* of 1000; the image so far was saved to opt.png' err.txt
expect "which is there" test -s opt.png
expect "with its log" test "$(wc -l < opt.csv)" -ge 2

# ---- temporaries a SIGKILL left ----
# A PID no process has (the largest possible, then downwards), and this shell's own.
dead=$(cat /proc/sys/kernel/pid_max); while kill -0 "$dead" 2> /dev/null; do dead=$((dead - 1)); done
mkdir out tmp
echo left > "out/.a.tmp-$dead-0.png"
echo left > "out/.other.tmp-$dead-3"
echo alive > "out/.a.tmp-$$-0.png"
echo mine > "out/.notes.tmp-1-2-3.txt.bak"
echo mine > "out/a.tmp-$dead-0.png"
echo left > "tmp/nst-ffmpeg-$dead-Ab12Cd.log"
echo alive > "tmp/nst-ffmpeg-$$-Ab12Cd.log"
TMPDIR=$PWD/tmp run 0 stylize --model $M --in $P --out out/a.png --quiet
expect "a dead run's temporary is removed" test ! -e "out/.a.tmp-$dead-0.png"
expect "whatever its name" test ! -e "out/.other.tmp-$dead-3"
expect "a dead run's ffmpeg log is removed" test ! -e "tmp/nst-ffmpeg-$dead-Ab12Cd.log"
expect "a live process's temporary stays" test -e "out/.a.tmp-$$-0.png"
expect "a live process's log stays" test -e "tmp/nst-ffmpeg-$$-Ab12Cd.log"
expect "other hidden files stay" test -e "out/.notes.tmp-1-2-3.txt.bak"
expect "visible files stay" test -e "out/a.tmp-$dead-0.png"
expect "the output is written" test -s out/a.png

# ---- --resume checks the photos, not only their number ----
run 0 train --style $P --data fx/photos --out r.safetensors --iters 1 --checkpoint-every 1 $O
mkdir others && for f in fx/photos/*; do cp fx/large.png "others/x_$(basename "$f" | cut -d. -f1).png"; done
run 1 train --style $P --data others --out r.safetensors --iters 2 --resume r.ckpt.safetensors $O
expect "another set of photos of the same size is refused" grep -q 'other photos than those under --data others' err.txt
run 0 train --style $P --data fx/photos --out r.safetensors --iters 2 --resume r.ckpt.safetensors $O

# ---- --vgg random is what was asked for: no advice to pass --vgg ----
run 0 optimize --content $P --style $S --out v.png --iters 1 $O
expect "--vgg random gives no note" test ! -s err.txt

finish
