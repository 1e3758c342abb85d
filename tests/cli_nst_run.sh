#!/usr/bin/env bash
# End-to-end test of nst-run (CTest: cli_nst_run). Exit codes, outputs and
# their sizes, directory mode, video through ffmpeg, and for every bad input:
# exit 1, exactly one line "nst-run: error: ..." on stderr, no output file.
# usage: cli_nst_run.sh NST_RUN FIXTURES WORKDIR [DATA_DIR]
set -u
# Job control: the runs this script starts in the background to interrupt
# them do not start with SIGINT ignored, as a script's background jobs
# otherwise do (nst-run leaves an ignored signal ignored, which nohup needs).
set -m
nst_run=$1 fixtures=$2 work=$3 data=${4:-}
source "$(dirname "$0")/cli_checks.sh"
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
# the last run failed properly: one error line on stderr, named output absent
failed_cleanly() {
  local output=$1
  if [ "$(wc -l < err.txt)" = 1 ] && grep -q '^nst-run: error: ' err.txt; then pass
  else fail "stderr is not one error line: $(cat err.txt)"; fi
  if [ ! -e "$output" ]; then pass; else fail "$output exists after a failure"; fi
}
png_size() {  # WIDTHxHEIGHT from the IHDR chunk
  local b; b=($(od -An -tu1 -j16 -N8 "$1"))
  echo "$(( (b[0]<<24) + (b[1]<<16) + (b[2]<<8) + b[3] ))x$(( (b[4]<<24) + (b[5]<<16) + (b[6]<<8) + b[7] ))"
}

"$fixtures" fx || { echo "FAIL: fixtures"; exit 1; }
echo "notes" > fx/photos/notes.txt  # not an image: skipped in directory mode

# ---- command line ----
run 0 --help
run 2
failed_cleanly none
run 2 stylize --in fx/photos/a.png --out x.png
failed_cleanly x.png
run 2 stylize --model fx/native.safetensors --in fx/photos/a.png --out x.png --max-size 0
failed_cleanly x.png
run 2 frobnicate
failed_cleanly none

# ---- import and info ----
run 0 import --from fx/tf_export --out tf.safetensors
expect "import wrote the file" test -s tf.safetensors
run 0 info tf.safetensors
expect "info lists tensors" grep -q 'conv_in.weight .*\[4, 3, 9, 9\]' out.txt
expect "info shows the variant" grep -q 'variant = tf-fast-style-transfer' out.txt
run 0 info fx/tf_export
expect "info reads an export dir" grep -q 'up1.weight' out.txt
run 1 import --from fx/photos --out bad.safetensors
failed_cleanly bad.safetensors
run 1 info fx/photos/a.png
failed_cleanly none

# ---- single images ----
for model in fx/native.safetensors tf.safetensors fx/tf_export; do
  run 0 stylize --model "$model" --in fx/photos/a.png --out a_out.png --device cpu
  expect "same size as the input ($model)" test "$(png_size a_out.png)" = 37x29
  rm -f a_out.png
done
run 0 stylize --model tf.safetensors --in fx/photos/b.jpg --out b_out.jpg --preserve-color
expect "jpeg written" test -s b_out.jpg
run 0 stylize --model tf.safetensors --in fx/photos/c.bmp --out c_out.bmp
expect "bmp written" test -s c_out.bmp
run 0 stylize --model tf.safetensors --in fx/photos/a.png --out a_small.png --max-size 20
expect "max-size shrinks" test "$(png_size a_small.png)" = 20x16
run 0 stylize --model tf.safetensors --in fx/photos/a.png --out a_small.png --max-size 020
expect "a leading zero is not octal" test "$(png_size a_small.png)" = 20x16
# A phone photo stored 40x24 with EXIF "rotate 90 clockwise" is upright: 24x40.
run 0 stylize --model tf.safetensors --in fx/rotated.jpg --out rotated.png
expect "EXIF orientation applied: $(png_size rotated.png)" test "$(png_size rotated.png)" = 24x40
# A name near the file system's limit: our temporary name must still fit.
long=$(printf 'n%.0s' $(seq 240)).png
run 0 stylize --model tf.safetensors --in fx/photos/a.png --out "$long" --quiet
expect "a 244-byte output name works" test -s "$long"
rm -f "$long"
run 0 stylize --model tf.safetensors --in fx/photos/a.png --out a_out.npy
expect "npy written" test -s a_out.npy
# 16-bit storage: the same image size; on the CPU a note says it is emulated
run 0 stylize --model tf.safetensors --in fx/photos/a.png --out a_f16.npy --precision fp16 --device cpu
expect "fp16 npy like fp32" test "$(stat -c %s a_f16.npy)" = "$(stat -c %s a_out.npy)"
expect "fp16 on the CPU is noted" grep -q 'fp16 on the CPU is emulated' err.txt
run 0 stylize --model fx/native.safetensors --in fx/photos --out styled_bf16 --precision bf16 --quiet
expect "bf16 directory" test -s styled_bf16/a.png
expect "bf16 quiet" test ! -s err.txt
run 2 stylize --model tf.safetensors --in fx/photos/a.png --out a_f8.png --precision fp8
failed_cleanly a_f8.png
# progress: plain lines when stderr is not a terminal, nothing with --quiet
run 0 stylize --model tf.safetensors --in fx/photos/a.png --out a_p.png
expect "plain progress line" grep -q '^\[1/1\] a.png' err.txt
run 0 stylize --model tf.safetensors --in fx/photos/a.png --out a_q.png --quiet
expect "quiet is silent" test ! -s err.txt

# ---- bad inputs: exit 1, one line, no output ----
run 1 stylize --model tf.safetensors --in fx/photos/missing.png --out m.png
failed_cleanly m.png
echo "this is text" > fake.png
run 1 stylize --model tf.safetensors --in fake.png --out fake_out.png
failed_cleanly fake_out.png
head -c 200 fx/photos/a.png > trunc.png
run 1 stylize --model tf.safetensors --in trunc.png --out trunc_out.png
failed_cleanly trunc_out.png
run 1 stylize --model missing.safetensors --in fx/photos/a.png --out m2.png
failed_cleanly m2.png
head -c 1000 tf.safetensors > trunc.safetensors
run 1 stylize --model trunc.safetensors --in fx/photos/a.png --out m3.png
failed_cleanly m3.png
run 1 stylize --model tf.safetensors --in fx/photos/a.png --out a_out.gif
failed_cleanly a_out.gif
run 1 stylize --model tf.safetensors --in fx/photos/a.png --out m4.png --device cuda:7
failed_cleanly m4.png
run 1 stylize --model tf.safetensors --in fx/photos/a.png --out m5.png --device tpu
failed_cleanly m5.png
run 1 stylize --model tf.safetensors --in fx/photos/a.png --out no_such_dir/m6.png
failed_cleanly no_such_dir/m6.png

# ---- out of memory: a batch that does not fit runs one image at a time ----
# (this fixture network needs some 320K for one 37x29 image, 470K for four)
mkdir -p same && for i in 1 2 3 4; do cp fx/photos/a.png same/p$i.png; done
NST_MEMORY_LIMIT=380K run 0 stylize --model fx/native.safetensors --in same --out same_out --batch 4
expect "batch too large for the limit: a note" grep -q 'does not fit in memory: one at a time' err.txt
for i in 1 2 3 4; do expect "one at a time wrote p$i.png" test -s same_out/p$i.png; done

# ---- directories ----
run 0 stylize --model fx/tf_export --in fx/photos --out styled/sub
for f in a.png b.jpg c.bmp; do expect "directory mode wrote $f" test -s "styled/sub/$f"; done
expect "non-images skipped" test ! -e styled/sub/notes.txt
expect "three progress lines" test "$(grep -c '^\[[1-3]/3\]' err.txt)" = 3
mkdir -p mixed && cp fx/photos/a.png fx/photos/b.jpg mixed/ && cp fake.png mixed/z.png
run 1 stylize --model tf.safetensors --in mixed --out mixed_out --quiet
expect "good images of a partly bad directory written" test -s mixed_out/a.png -a -s mixed_out/b.jpg
expect "bad image not written" test ! -e mixed_out/z.png
expect "error names the bad file" grep -q 'z.png' err.txt
mkdir -p empty_dir
run 1 stylize --model tf.safetensors --in empty_dir --out empty_out
expect "no images: error" grep -q 'no images' err.txt
run 1 stylize --model tf.safetensors --in fx/photos --out fx/photos
expect "refuses to overwrite the inputs" grep -q 'overwritten' err.txt
expect "no temporaries left" test -z "$(find . -name '.*.tmp-*')"

# ---- video through ffmpeg ----
if command -v ffmpeg > /dev/null && command -v ffprobe > /dev/null; then
  ffmpeg -v error -f lavfi -i testsrc=size=48x36:rate=12 -f lavfi -i sine=frequency=440 \
    -t 1 -pix_fmt yuv420p -shortest clip.mp4 || fail "making the test clip"
  run 0 stylize --model tf.safetensors --in clip.mp4 --out clip_out.mp4 --max-size 40
  expect "video written" test -s clip_out.mp4
  streams=$(ffprobe -v error -show_entries stream=codec_type,width,height,nb_frames -of csv=p=0 clip_out.mp4)
  expect "video stream 40x30, 12 frames: $streams" grep -q 'video,40,30,12' <<< "$streams"
  expect "audio kept: $streams" grep -q '^audio' <<< "$streams"
  run 0 stylize --model tf.safetensors --in clip.mp4 --out clip_out.mkv --quiet --batch 5
  expect "mkv written in batches of 5 (12 frames: the last batch is short)" test -s clip_out.mkv
  streams=$(ffprobe -v error -count_frames -show_entries stream=nb_read_frames -select_streams v -of csv=p=0 clip_out.mkv)
  expect "every frame written: $streams" test "$streams" = 12
  run 1 stylize --model tf.safetensors --in clip.mp4 --out clip_out.png
  failed_cleanly clip_out.png
  # video-metrics: a pan (3 pixels a frame) over a textured still (a Mandelbrot picture: testsrc's flat
  # colour bars give optical flow nothing to hold on to), against itself (measured 2.8e-3), against a
  # copy with fresh noise in every frame (flicker: 8.7 times that), and against a clip of another length.
  ffmpeg -v error -f lavfi -i mandelbrot=size=320x240 -frames:v 1 still.png &&
    ffmpeg -v error -loop 1 -framerate 12 -i still.png -vf "crop=160:120:x='20+3*n':y=40,format=yuv420p" \
      -frames:v 12 -c:v libx264 -crf 10 pan.mp4 &&
    ffmpeg -v error -i pan.mp4 -vf "noise=alls=30:allf=t,format=yuv420p" -c:v libx264 -crf 10 pan_flicker.mp4 &&
    ffmpeg -v error -i pan.mp4 -frames:v 8 -c:v libx264 -crf 10 pan_short.mp4 || fail "making the pan clips"
  run 0 video-metrics --in pan.mp4 --stylized pan.mp4 --csv metrics.csv
  expect "a clip against itself: its own warping error, small" awk '
    /^warping error:/ { e = $3 } /^input warping error:/ { i = $4 }
    END { exit !(e == i && e < 0.005) }' out.txt
  expect "one csv row per frame pair" test "$(wc -l < metrics.csv)" = 12
  run 0 video-metrics --in pan.mp4 --stylized pan_flicker.mp4
  expect "flicker: far above the input's warping error" awk '/^ratio:/ { exit !($2 > 5) }' out.txt
  run 1 video-metrics --in pan.mp4 --stylized pan_short.mp4
  expect "different lengths named" grep -q -- '--stylized pan_short.mp4 ends after 8 frames, and --in pan.mp4 has 12' err.txt
  # Stabilization (the default): the pan stylized by a random network (which flickers a lot) has at most
  # a quarter of the frame-by-frame clip's warping error (measured: a thirteenth); across a scene cut
  # (the pan, then a pan over another picture) the first frame after the cut is the fresh stylization
  # (the same as --no-stabilize up to the encoder: 38 dB), where the frames before it follow the motion.
  run 0 stylize --model tf.safetensors --in pan.mp4 --out pan_raw.mp4 --no-stabilize --quiet
  run 0 stylize --model tf.safetensors --in pan.mp4 --out pan_stab.mp4 --quiet
  "$nst_run" video-metrics --in pan.mp4 --stylized pan_raw.mp4 > raw.txt 2>&1
  "$nst_run" video-metrics --in pan.mp4 --stylized pan_stab.mp4 > stab.txt 2>&1
  expect "stabilized: at most a quarter of the warping error" awk '/^warping error:/ { e[n++] = $3 }
    END { exit !(n == 2 && e[1] <= e[0] / 4) }' raw.txt stab.txt
  ffmpeg -v error -f lavfi -i "cellauto=size=320x240:rule=30" -frames:v 1 still2.png &&
    ffmpeg -v error -loop 1 -framerate 12 -i still2.png -vf "crop=160:120:x='20+3*n':y=40,format=yuv420p" \
      -frames:v 12 -c:v libx264 -crf 10 pan2.mp4 &&
    ffmpeg -v error -i pan.mp4 -i pan2.mp4 -filter_complex "[0:v][1:v]concat=n=2:v=1[v]" -map "[v]" \
      -c:v libx264 -crf 10 cut.mp4 || fail "making the scene-cut clip"
  run 0 stylize --model tf.safetensors --in cut.mp4 --out cut_raw.mp4 --no-stabilize --quiet
  run 0 stylize --model tf.safetensors --in cut.mp4 --out cut_stab.mp4 --quiet
  ffmpeg -v error -i cut_stab.mp4 -i cut_raw.mp4 -lavfi "psnr=stats_file=psnr.log" -f null - || fail "psnr"
  expect "the frame after the cut is the fresh stylization, the ones before follow the motion" awk '
    { split($6, p, ":"); psnr[substr($1, 3)] = p[2] }
    END { before = 0; for (i = 2; i <= 12; ++i) before = psnr[i] > before ? psnr[i] : before
          exit !(psnr[13] >= 35 && before < 30) }' psnr.log
  # optimize on a video (random VGG-19): a pan over a blurred Mandelbrot picture (6 frames, 96x72) with
  # the temporal loss has at most a quarter of the warping error of the same run without it (measured:
  # a sixth); both start each frame from the previous result moved by the flow.
  ffmpeg -v error -f lavfi -i mandelbrot=size=320x240 -vf gblur=sigma=2 -frames:v 1 still_blur.png &&
    ffmpeg -v error -loop 1 -framerate 12 -i still_blur.png \
      -vf "crop=160:120:x='20+3*n':y=40,scale=96:72,format=yuv420p" -frames:v 6 -c:v libx264 -crf 10 \
      pan_small.mp4 || fail "making the small pan"
  for w in 0 5; do
    run 0 optimize --content pan_small.mp4 --style fx/photos/b.jpg --out "vopt_$w.mp4" --size 96 --iters 30 \
      --temporal-weight "$w" --quiet --device cpu
    "$nst_run" video-metrics --in pan_small.mp4 --stylized "vopt_$w.mp4" > "vopt_$w.txt" 2>&1
  done
  expect "optimize on video: 6 frames written" test "$(ffprobe -v error -count_frames -show_entries \
    stream=nb_read_frames -of csv=p=0 vopt_5.mp4)" = 6
  expect "the temporal loss: at most a quarter of the warping error" awk '/^warping error:/ { e[n++] = $3 }
    END { exit !(n == 2 && e[1] <= e[0] / 4) }' vopt_0.txt vopt_5.txt
  run 1 optimize --content pan_small.mp4 --style fx/photos/b.jpg --out vopt.png
  expect "video content needs a video output" grep -q 'must be one too' err.txt
  # (Clips cut short or damaged: cli_video_input and cli_bad_input.)
  echo "not a video" > bad.mp4
  run 1 stylize --model tf.safetensors --in bad.mp4 --out bad_out.mp4
  failed_cleanly bad_out.mp4
  PATH=/nonexistent run 1 stylize --model tf.safetensors --in clip.mp4 --out noff.mp4
  failed_cleanly noff.mp4
  expect "missing ffmpeg named" grep -q 'ffmpeg' err.txt

  # Signals: INT (Ctrl-C), TERM and HUP (the terminal closed) stop the run
  # with one error line and no output, and leave no temporary behind; a
  # second signal ends it at once, removing the temporaries first.
  ffmpeg -v error -f lavfi -i testsrc=size=160x120:rate=24 -t 60 -pix_fmt yuv420p long.mp4 || fail "making the long clip"
  for signals in HUP TERM INT "TERM TERM"; do
    name=long_${signals// /_}
    "$nst_run" stylize --model tf.safetensors --in long.mp4 --out $name.mp4 --quiet > out.txt 2> err.txt &
    pid=$!
    for _ in $(seq 600); do [ -n "$(find . -maxdepth 1 -name ".$name.tmp-*")" ] && break; sleep 0.05; done
    sleep 0.3
    for s in $signals; do kill -$s $pid; done
    wait $pid; status=$?
    if [ "$signals" = "TERM TERM" ]; then
      # the first signal may already have ended the run cleanly when the second arrives
      expect "two SIGTERMs end the run (status $status)" test "$status" = 143 -o "$status" = 1
    else
      expect "SIG$signals: exit 1 (got $status)" test "$status" = 1
      expect "SIG$signals: one error line" test "$(grep -c '^nst-run: error: interrupted' err.txt)" = 1
    fi
    expect "SIG$signals: no temporary left" test -z "$(find . -name ".$name.tmp-*")"
    expect "SIG$signals: no output" test ! -e $name.mp4
  done
else
  echo "ffmpeg not installed: video checks skipped"
fi

# ---- batches and tiles ----
mkdir -p same && cp fx/photos/a.png same/a1.png && cp fx/photos/a.png same/a2.png && cp fx/photos/c.bmp same/c.bmp
run 0 stylize --model fx/native.safetensors --in same --out same_b1 --device cpu --quiet
run 0 stylize --model fx/native.safetensors --in same --out same_b3 --device cpu --batch 3 --quiet
expect "a batch gives what single images give" cmp -s same_b1/a2.png same_b3/a2.png
expect "a batch gives what single images give (other size)" cmp -s same_b1/c.bmp same_b3/c.bmp
run 0 stylize --model fx/native.safetensors --in fx/large.png --out tiled.png --device cpu --tile 44
expect "tiled output size" test "$(png_size tiled.png)" = "$(png_size fx/large.png)"
expect "tiles chosen by the user need no note" test "$(grep -c 'note' err.txt)" = 0
run 2 stylize --model fx/native.safetensors --in fx/photos/a.png --out x.png --tile 8
failed_cleanly x.png
run 2 stylize --model fx/native.safetensors --in fx/photos/a.png --out x.png --batch 0
failed_cleanly x.png

# ---- optimize (embedded random VGG-19, tiny sizes) ----
run 0 optimize --content fx/photos/a.png --style fx/photos/b.jpg --out opt.png --size 32 \
  --iters 4 --save-every 2 --log opt.csv --device cpu
expect "optimize wrote the result" test "$(png_size opt.png)" = "$(png_size fx/photos/a.png | awk -Fx '{ if ($1 >= $2) print 32 "x" int($2 * 32 / $1 + 0.5); else print int($1 * 32 / $2 + 0.5) "x" 32 }')"
expect "snapshots every 2 iterations" test -s opt_2.png -a -s opt_4.png
expect "csv log has a header and 4 rows" test "$(wc -l < opt.csv)" = 5
expect "the random network is announced once" test "$(grep -c 'random weights' err.txt)" = 1
run 0 optimize --content fx/photos/a.png --style fx/photos/b.jpg --style fx/photos/a.png \
  --style-blend 1,0 --scales 24,32 --optimizer adam --original-colors --out opt2.png --iters 2 --quiet --device cpu
expect "multi-scale result written" test -s opt2.png
# Tiles (shallow layers: a halo of 4) give the untiled losses.
for t in 0 16; do
  run 0 optimize --content fx/photos/a.png --style fx/photos/b.jpg --out "tiles$t.png" --size 48 --iters 2 \
    --content-layers relu2_1 --style-layers relu1_1,relu2_1 --tile "$t" --log "tiles$t.csv" --quiet --device cpu
done
expect "tiled and untiled losses agree" awk -F, 'NR == FNR { a[FNR] = $8; next }
  FNR > 1 { d = $8 - a[FNR]; if (d < 0) d = -d; if (d > 1e-5 * a[FNR]) exit 1 }' tiles0.csv tiles16.csv
expect "the tiled log has its rows" test "$(wc -l < tiles16.csv)" = 3
run 1 optimize --content nowhere.png --style fx/photos/b.jpg --out opt3.png --iters 1 --device cpu
failed_cleanly opt3.png
run 1 optimize --content fx/photos/a.png --style fx/photos/b.jpg --out opt3.png --iters 1 \
  --style-layers relu9_9 --device cpu
failed_cleanly opt3.png
run 2 optimize --content fx/photos/a.png --style fx/photos/b.jpg --out opt3.png --iters many
failed_cleanly opt3.png

# ---- train (embedded random VGG-19, tiny sizes) ----
mkdir -p trainset/sub empty_dir
cp fx/photos/a.png fx/photos/b.jpg trainset/ && cp fx/photos/a.png trainset/sub/c.png
echo "not a png" > trainset/broken.png
train_args=(--style fx/photos/b.jpg --data trainset --size 32 --batch 2 --device cpu)
run 0 train "${train_args[@]}" --out net.safetensors --iters 4 --checkpoint-every 2 \
  --sample-every 2 --sample-image fx/photos/a.png --log train.csv
expect "train wrote the model" test -s net.safetensors
expect "train wrote the checkpoint" test -s net.ckpt.safetensors
expect "samples every 2 steps" test -s net_sample_000002.png -a -s net_sample_000004.png
expect "train csv has a header and 4 rows" test "$(wc -l < train.csv)" = 5
expect "the unreadable photo is warned about once" test "$(grep -c 'warning: skipping trainset/broken.png' err.txt)" = 1
expect "the summary counts it" grep -q '1 unreadable' err.txt
run 0 info net.safetensors
expect "the model records its style and steps" grep -q 'trained_steps = 4' out.txt
run 0 stylize --model net.safetensors --in fx/photos/a.png --out trained.png --device cpu
expect "the trained model stylizes" test "$(png_size trained.png)" = "$(png_size fx/photos/a.png)"
# Two steps, then two more from the checkpoint: the same losses and model as four at once.
run 0 train "${train_args[@]}" --out half.safetensors --iters 2 --checkpoint-every 2 --log half.csv --quiet
cp half.ckpt.safetensors step2.ckpt.safetensors
run 0 train "${train_args[@]}" --out half.safetensors --iters 4 --resume half.ckpt.safetensors --log half.csv --quiet
expect "resumed losses equal an uninterrupted run's" diff <(cut -d, -f1,3-6 train.csv) <(cut -d, -f1,3-6 half.csv)
expect "resumed model equals an uninterrupted run's" cmp -s net.safetensors half.safetensors
# Resuming from an older checkpoint drops the log's rows after it instead of repeating steps.
run 0 train "${train_args[@]}" --out half.safetensors --iters 4 --resume step2.ckpt.safetensors --log half.csv --quiet
expect "the log has each step once" diff <(cut -d, -f1,3-6 train.csv) <(cut -d, -f1,3-6 half.csv)
# Ctrl-C: a checkpoint, one error line saying how to resume, no model.
"$nst_run" train "${train_args[@]}" --out int.safetensors --iters 100000 --checkpoint-every 0 --log int.csv \
  --quiet > out.txt 2> err.txt &
pid=$!
for _ in $(seq 600); do [ "$(cat int.csv 2>/dev/null | wc -l)" -ge 3 ] && break; sleep 0.1; done
kill -INT $pid; wait $pid; status=$?
if [ "$status" = 1 ]; then pass; else fail "interrupted train exited $status, expected 1"; fi
expect "interrupted train saved a checkpoint" test -s int.ckpt.safetensors
expect "interrupted train says how to resume" grep -q 'resume int.ckpt.safetensors' err.txt
expect "interrupted train wrote no model" test ! -e int.safetensors
run 0 train "${train_args[@]}" --out int.safetensors --iters "$(( $(tail -1 int.csv | cut -d, -f1) + 1 ))" \
  --resume int.ckpt.safetensors --quiet
expect "the interrupted run resumes" test -s int.safetensors
# bad input
run 1 train --style nowhere.png --data trainset --out t1.safetensors --iters 1 --device cpu
failed_cleanly t1.safetensors
run 1 train --style fx/photos/b.jpg --data empty_dir --out t1.safetensors --iters 1 --device cpu
failed_cleanly t1.safetensors
run 1 train "${train_args[@]}" --out t1.png --iters 1
failed_cleanly t1.png
run 1 train "${train_args[@]}" --out t1.safetensors --iters 2 --epochs 1
failed_cleanly t1.safetensors
run 1 train "${train_args[@]}" --out t1.safetensors --iters 2 --sample-every 1
failed_cleanly t1.safetensors
run 1 train --style fx/photos/b.jpg --data trainset --size 24 --batch 2 --device cpu --out t1.safetensors \
  --iters 4 --resume half.ckpt.safetensors
failed_cleanly t1.safetensors
expect "a mismatched resume names the flag" grep -q -- '--size 32' err.txt
run 1 train "${train_args[@]}" --out t1.safetensors --iters 4 --resume fx/native.safetensors
failed_cleanly t1.safetensors
run 2 train "${train_args[@]}" --out t1.safetensors --batch 0
failed_cleanly t1.safetensors

# ---- a real pretrained network, when the data is there ----
if [ -n "$data" ]; then
  run 0 stylize --model "$data/pretrained/fast-style-transfer/wave" \
    --in "$data/content/hoovertowernight.jpg" --out hoover.png --max-size 64
  expect "real network output size" test "$(png_size hoover.png)" = 64x34
  # Stabilization with a real network: a textured square moving 5 pixels a frame over a still
  # background. The texture is seeded: unseeded, cellauto draws another one each run, and the SSIM
  # where the square is now ranged from 0.82 to 0.90 (one run in three of the full suite failed at
  # 0.8). Measured with seed 1 (2026-12-07): warping error 1/5.1 of frame by frame; SSIM to the
  # frame-by-frame frames 0.945 over the clip; in the last frame 0.844 where the square is now (it is
  # stylized and where it should be, no lag) and 0.951 where it started (no ghost left behind).
  if command -v ffmpeg > /dev/null && [ -e still_blur.png ]; then
    ffmpeg -v error -f lavfi -i "cellauto=size=40x40:rule=30:seed=1" -frames:v 1 square.png &&
      ffmpeg -v error -loop 1 -framerate 12 -i still_blur.png -loop 1 -framerate 12 -i square.png \
        -filter_complex "[0]crop=160:120:x=20:y=40[bg];[bg][1]overlay=x='10+5*n':y=40,format=yuv420p" \
        -frames:v 16 -c:v libx264 -crf 10 square.mp4 || fail "making the moving-square clip"
    for mode in stab raw; do
      flag=(); [ $mode = raw ] && flag=(--no-stabilize)
      run 0 stylize --model "$data/pretrained/fast-style-transfer/wave" --in square.mp4 --out "square_$mode.mp4" \
        "${flag[@]}" --quiet --device cpu
      "$nst_run" video-metrics --in square.mp4 --stylized "square_$mode.mp4" > "square_$mode.txt" 2>&1
    done
    expect "moving square: at most a quarter of the warping error" awk '/^warping error:/ { e[n++] = $3 }
      END { exit !(n == 2 && e[0] <= e[1] / 4) }' square_stab.txt square_raw.txt
    ssim_all() {  # SSIM (All) of the stabilized and frame-by-frame clips through an ffmpeg filter chain
      ffmpeg -hide_banner -i square_stab.mp4 -i square_raw.mp4 -lavfi "$1" -f null - 2>&1 |
        sed -n 's/.*All:\([0-9.]*\).*/\1/p' | tail -1
    }
    last="select='eq(n\,15)'"
    expect "stabilized frames stay close to their own stylization (SSIM >= 0.8)" \
      awk -v s="$(ssim_all ssim)" 'BEGIN { exit !(s >= 0.8) }'
    expect "the square is stylized where it is now" awk -v s="$(ssim_all \
      "[0]$last,crop=40:40:85:40[a];[1]$last,crop=40:40:85:40[b];[a][b]ssim")" 'BEGIN { exit !(s >= 0.8) }'
    expect "no ghost where it started" awk -v s="$(ssim_all \
      "[0]$last,crop=40:40:10:40[a];[1]$last,crop=40:40:10:40[b];[a][b]ssim")" 'BEGIN { exit !(s >= 0.8) }'
  fi
fi

finish
