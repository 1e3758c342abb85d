#!/usr/bin/env bash
# CTest cli_video_input: videos that are odd but valid, or cut short, through
# nst-run (video/ffmpeg.hpp). Every clip is made here with ffmpeg, small and
# short. Each case checks what ffprobe finds in the output: every frame kept
# (a variable frame rate, an edit list, an audio track shorter than the
# video), the length kept to within a frame, the displayed shape kept
# (pixels that are not square), names with colons or all extension (.mp4),
# each container; a clip cut short gives one warning naming it and the
# counts, and no warning where the frame count is only an estimate. ffmpeg's logs are named after
# nst-run's PID and removed, and a second signal kills ffmpeg. (Damaged
# clips and refusals: cli_bad_input.)
# usage: cli_video_input.sh NST_RUN FIXTURES WORKDIR
set -u
nst_run=$1 fixtures=$2 work=$3
source "$(dirname "$0")/cli_checks.sh"
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
"$fixtures" fx > /dev/null || { echo "FAIL: fixtures"; exit 1; }
M=fx/native.safetensors
# stylize IN OUT [ARGS...]: exit 0 expected; stderr -> err.txt
stylize() {
  local in=$1 out=$2; shift 2
  "$nst_run" stylize --model $M --in "$in" --out "$out" --quiet "$@" > /dev/null 2> err.txt ||
    fail "stylize $in -> $out: exit $?: $(head -c 300 err.txt)"
}
no_warning() { expect "$1: stderr is empty: $(head -c 300 err.txt)" test ! -s err.txt; }
packets() { ffprobe -v error -select_streams v:0 -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "file:$1"; }
field() { ffprobe -v error -select_streams "$2" -show_entries "$3" -of csv=p=0 "file:$1"; }
clip() {  # clip OUT [ffmpeg output options...]: 24 frames of 64x48 at 24 fps, x264
  local out=$1; shift
  ffmpeg -v error -y -f lavfi -i testsrc2=size=64x48:rate=24 -frames:v 24 -pix_fmt yuv420p "$@" "$out" ||
    fail "making $out"
}

# ---- a variable frame rate: 40 frames at 24 fps, 80 at 32 (nominal 24, average 28.8) ----
timestamps="setpts='(N/24-if(gte(N,40),(N-40)/96,0))/TB'"
ffmpeg -v error -f lavfi -i "testsrc2=size=64x48:rate=24,trim=end_frame=120,settb=1/1000,$timestamps,format=yuv420p" \
  -fps_mode passthrough -enc_time_base 1/1000 -c:v libx264 vfr.mp4 || fail "making vfr.mp4"
ffmpeg -v error -i vfr.mp4 -c copy vfr.mkv || fail "making vfr.mkv"
for f in vfr.mp4 vfr.mkv; do
  stylize $f out_$f
  no_warning "variable frame rate $f"
  expect "$f: all 120 frames kept (got $(packets out_$f))" test "$(packets out_$f)" = 120
done
# The length of the mp4, with its average rate, within a frame (the Matroska file
# states no frame count, so the average it gives is the nominal rate: README).
expect "vfr.mp4: the length kept within a frame ($(field vfr.mp4 v:0 stream=duration) s -> \
$(field out_vfr.mp4 v:0 stream=duration) s)" awk -v a="$(field vfr.mp4 v:0 stream=duration)" \
  -v b="$(field out_vfr.mp4 v:0 stream=duration)" 'BEGIN { d = a - b; exit !(d < 1 / 28.8 && -d < 1 / 28.8) }'
"$nst_run" video-metrics --in vfr.mp4 --stylized out_vfr.mp4 > out.txt 2> err.txt
expect "video-metrics reads both variable-rate clips frame for frame: $(head -c 300 err.txt)" grep -q '^frames: 120$' out.txt

# ---- a constant rate keeps its exact nominal rate ----
ffmpeg -v error -f lavfi -i testsrc2=size=64x48:rate=30000/1001 -frames:v 30 -pix_fmt yuv420p ntsc.mp4 || fail "making ntsc.mp4"
stylize ntsc.mp4 out_ntsc.mp4
expect "30000/1001 kept: $(field out_ntsc.mp4 v:0 stream=r_frame_rate)" test "$(field out_ntsc.mp4 v:0 stream=r_frame_rate)" = 30000/1001
expect "30 frames" test "$(packets out_ntsc.mp4)" = 30

# ---- pixels twice as wide as high (64x48 stored, 128x48 displayed) ----
clip sar.mp4 -vf setsar=2
stylize sar.mp4 out_sar.mp4
shape=$(field out_sar.mp4 v:0 stream=width,height,sample_aspect_ratio)
expect "shown as displayed, square pixels: $shape" grep -Eq '^128,48,(1:1|N/A)$' <<< "$shape"
stylize sar.mp4 out_sar_small.mp4 --max-size 64
shape=$(field out_sar_small.mp4 v:0 stream=width,height)
expect "--max-size on the displayed size: $shape" test "$shape" = 64,24

# ---- an edit list (a trimmed clip stores frames it does not show) ----
ffmpeg -v error -f lavfi -i testsrc2=size=64x48:rate=24 -frames:v 48 -g 48 -pix_fmt yuv420p long.mp4 &&
  ffmpeg -v error -ss 0.5 -i long.mp4 -c copy trimmed.mp4 || fail "making trimmed.mp4"
stylize trimmed.mp4 out_trimmed.mp4
no_warning "an edit list"
expect "the frames shown: 36 (got $(packets out_trimmed.mp4))" test "$(packets out_trimmed.mp4)" = 36

# ---- audio shorter than the video: every frame kept (-shortest used to cut the video) ----
ffmpeg -v error -f lavfi -i testsrc2=size=64x48:rate=24 -f lavfi -i sine=duration=1 -frames:v 72 -pix_fmt yuv420p \
  short_audio.mp4 || fail "making short_audio.mp4"
stylize short_audio.mp4 out_short_audio.mp4
expect "72 frames beside 1 s of audio (got $(packets out_short_audio.mp4))" test "$(packets out_short_audio.mp4)" = 72

# ---- names with colons: ffmpeg would take "2024-05-01T12" for a protocol ----
ffmpeg -v error -f lavfi -i testsrc2=size=64x48:rate=24 -f lavfi -i sine -frames:v 24 -pix_fmt yuv420p -shortest \
  "file:2024-05-01T12:30:00.mp4" || fail "making the clip with colons"
for out in "out:12:30.mp4" "out:12:30.mkv"; do  # the audio copied, and re-encoded
  stylize 2024-05-01T12:30:00.mp4 "$out"
  expect "$out: video and audio" test "$(field "$out" a:0 stream=codec_type)/$(packets "$out")" = audio/24
done

# ---- a name that is all extension: the temporary keeps it, so ffmpeg knows the format ----
mkdir -p bare && stylize 2024-05-01T12:30:00.mp4 bare/.mp4
expect "bare/.mp4: 24 frames" test "$(packets bare/.mp4)" = 24
expect "bare/.mp4: no temporary left" test -z "$(find bare -name '.*.tmp*')"

# ---- each container: every frame written, and read back ----
clip c24.mp4
for ext in mov m4v avi webm mpg wmv flv gif; do
  stylize c24.mp4 "out_c24.$ext"
  expect ".$ext: 24 frames (got $(packets out_c24.$ext))" test "$(packets out_c24.$ext)" = 24
done

# ---- counts that are estimates (duration x rate: Matroska, WebM) give no warning ----
clip est.mkv
clip est.webm
for f in est.mkv est.webm; do
  stylize $f out_$f
  no_warning "$f"
done

# ---- a clip cut at 60%: a warning, and the frames there are ----
for f in cut.mp4 cut.mkv; do
  # 320x240 with a keyframe every 6 frames: the frames are of similar sizes
  ffmpeg -v error -f lavfi -i testsrc2=size=320x240:rate=24 -frames:v 24 -g 6 -pix_fmt yuv420p -movflags +faststart \
    whole_$f && head -c $(($(stat -c %s whole_$f) * 6 / 10)) whole_$f > $f || fail "making $f"
  stylize $f out_$f --max-size 64
  got=$(packets out_$f)
  expect "$f: one warning with the counts, $got frames written: $(cat err.txt)" \
    grep -Eq "^nst-run: warning: $f: the video ends early \(truncated\?\): $got of 24 frames decoded$" err.txt
  expect "$f: nothing else on stderr" test "$(wc -l < err.txt)" = 1
  expect "$f: some frames, not all ($got)" test "$got" -gt 0 -a "$got" -lt 24
done
# optimize, on 6 frames (keyframes every 2) cut at 60%
ffmpeg -v error -f lavfi -i testsrc2=size=320x240:rate=24 -frames:v 6 -g 2 -pix_fmt yuv420p whole6.mkv &&
  head -c $(($(stat -c %s whole6.mkv) * 6 / 10)) whole6.mkv > cut6.mkv || fail "making cut6.mkv"
"$nst_run" optimize --content cut6.mkv --style fx/photos/b.jpg --out out_opt.mkv --size 32 --iters 1 --quiet \
  --device cpu > /dev/null 2> err.txt || fail "optimize on a cut clip: $(head -c 300 err.txt)"
got=$(packets out_opt.mkv)
expect "optimize: the same warning, $got frames written: $(cat err.txt)" \
  grep -Eq "^nst-run: warning: cut6.mkv: the video ends early \(truncated\?\): $got of 6 frames decoded$" err.txt

# ---- ffmpeg's logs: $TMPDIR/nst-ffmpeg-<nst-run's PID>-XXXXXX.log, removed on a second signal ----
mkdir tmp
ffmpeg -v error -f lavfi -i testsrc2=size=160x120:rate=24 -t 60 -pix_fmt yuv420p minute.mp4 || fail "making minute.mp4"
TMPDIR=$work/tmp "$nst_run" stylize --model $M --in minute.mp4 --out out_minute.mp4 --quiet > /dev/null 2> err.txt &
pid=$!
for _ in $(seq 600); do [ "$(ls tmp | wc -l)" -ge 2 ] && break; sleep 0.05; done
logs=$(ls tmp)
expect "the decoder's and encoder's logs named after PID $pid: $logs" \
  test "$(grep -Ec "^nst-ffmpeg-$pid-[A-Za-z0-9]{6}\.log$" <<< "$logs")" = 2
# Both ffmpegs stopped, so that they cannot end on their own: only the
# second signal's SIGKILL ends them (tools/interrupt.cpp, which hears of
# them through video/subprocess.hpp's hooks).
ffmpegs() { for p in /proc/[0-9]*; do read -r _ comm _ ppid _ < $p/stat && [ "$comm $ppid" = "(ffmpeg) $pid" ] && echo ${p#/proc/}; done 2> /dev/null; }
for _ in $(seq 600); do [ "$(ffmpegs | wc -l)" -ge 2 ] && break; sleep 0.05; done
children=$(ffmpegs)
expect "two ffmpegs running: $children" test "$(wc -w <<< "$children")" = 2
kill -STOP $children
kill -TERM $pid; sleep 0.3; kill -TERM $pid; wait $pid; status=$?
expect "the second SIGTERM ends the run at once (status $status)" test $status = 143
left=$(for c in $children; do kill -0 $c 2> /dev/null && echo $c; done)
expect "the second SIGTERM killed both ffmpegs (left: $left)" test -z "$left"
kill -KILL $left 2> /dev/null
expect "two SIGTERMs: no log left: $(ls tmp)" test -z "$(ls tmp)"
expect "no temporary left" test -z "$(find . -name '.*.tmp-*')"

finish
