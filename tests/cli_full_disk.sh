#!/usr/bin/env bash
# CTest cli_full_disk: a full file system never costs the user a file. On a
# small tmpfs that holds an earlier out.mp4 and out.png, stylizing a clip
# and a photo over them fails once the disk is (nearly) full: exit 1, one
# error line naming the file and the full disk, the old file byte for byte
# as it was, no temporary left. ffmpeg itself exits 0 after "Error writing
# trailer: No space left on device" (video/ffmpeg.cpp). With room, the video
# is written and whole. A log there fails its run and stays as it was.
# Needs root (mount); elsewhere it says why and exits 77, which CTest shows
# as skipped.
# usage: cli_full_disk.sh NST_RUN FIXTURES WORKDIR
set -u
nst_run=$1 fixtures=$2 work=$3
source "$(dirname "$0")/cli_checks.sh"
skip() { echo "skipped: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "mounting a tmpfs needs root"
command -v ffmpeg > /dev/null || skip "ffmpeg is not installed"
umount "$work/disk" 2> /dev/null
rm -rf "$work" && mkdir -p "$work/disk" && cd "$work" || exit 1
mount -t tmpfs -o size=1M nst-full-disk disk 2> mount.txt || skip "mount -t tmpfs failed: $(cat mount.txt)"
disk=$(pwd)/disk
trap 'umount "$disk"' EXIT
"$fixtures" fx > /dev/null || { echo "FAIL: fixtures"; exit 1; }
stylize() { "$nst_run" stylize --model fx/native.safetensors --in "$1" --out "$2" --quiet > out.txt 2> err.txt; }
ffmpeg -v error -f lavfi -i testsrc2=size=96x72:rate=24 -f lavfi -i sine -t 2 -pix_fmt yuv420p -shortest clip.mp4 ||
  { echo "FAIL: making the clip"; exit 1; }

# With room: written, and whole.
stylize clip.mp4 disk/out.mp4
status=$?
expect "with room: exit 0 (got $status): $(cat err.txt)" test $status = 0
expect "with room: 48 frames" test "$(ffprobe -v error -count_packets -select_streams v:0 \
  -show_entries stream=nb_read_packets -of csv=p=0 disk/out.mp4)" = 48
stylize fx/photos/a.png disk/out.png
expect "with room: the image written: $(cat err.txt)" test -s disk/out.png

# Full, or nearly: the encoder fails before its header (0 KB left), in its
# frames or its trailer (the rest).
for free in 0 8 40; do
  dd if=/dev/zero of=disk/fill bs=4K 2> /dev/null
  [ "$free" = 0 ] || truncate -s "-${free}K" disk/fill
  before=$(md5sum disk/out.mp4 disk/out.png)
  cases=("clip.mp4 disk/out.mp4")
  [ "$free" = 0 ] && cases+=("fx/photos/a.png disk/out.png")  # a PNG of a few KB fits elsewhere
  for c in "${cases[@]}"; do
    read -r in out <<< "$c"
    stylize "$in" "$out"
    status=$?
    what="$out with ${free}K free"
    expect "$what: exit 1 (got $status)" test $status = 1
    expect "$what: one error line naming the file and the full disk: $(cat err.txt)" \
      test "$(wc -l < err.txt)" = 1 -a "$(grep -c "^nst-run: error: $out: .*o space left on device" err.txt)" = 1
    expect "$what: the old files untouched" test "$(md5sum disk/out.mp4 disk/out.png)" = "$before"
    expect "$what: no temporary left: $(ls -A disk)" test -z "$(find disk -name '.*.tmp*')"
  done
  rm disk/fill
done

# A log on a full disk: the run fails, the user's log stays as it was.
printf 'iteration,loss\n1,2\n' > disk/run.csv
dd if=/dev/zero of=disk/fill bs=4K 2> /dev/null
before=$(md5sum disk/run.csv)
"$nst_run" optimize --content fx/photos/a.png --style fx/photos/b.jpg --out o.png --size 32 --iters 3 \
  --log disk/run.csv --device cpu --vgg random --quiet > out.txt 2> err.txt
status=$?
expect "a log on a full disk: exit 1 (got $status)" test $status = 1
expect "one error line naming the log: $(cat err.txt)" \
  test "$(wc -l < err.txt)" = 1 -a "$(grep -c "^nst-run: error: .*disk/run.csv" err.txt)" = 1
expect "the old log untouched" test "$(md5sum disk/run.csv)" = "$before"
expect "no image written" test ! -e o.png
expect "no temporary left: $(ls -A disk)" test -z "$(find disk -name '.*.tmp*')"
rm disk/fill

finish
