#!/usr/bin/env bash
# CTest cli_bad_input: the table of bad inputs every nst-run command must
# survive. Each row runs twice, once with the output absent and once with a
# file already there; each time nst-run must exit with the row's status (1:
# bad input, 2: bad command line) and write exactly one line,
# "nst-run: error: ...", to stderr (a row may name text that line must hold),
# must not crash or hang, must neither create the output nor touch the old
# one, must leave no temporary file, and must leave every other file (the
# user's photos, paintings, networks, exports) byte for byte as it was.
# (Allowed besides: the note that the embedded VGG-19 is used, and train's
# one warning per unreadable photo.)
# usage: cli_bad_input.sh NST_RUN FIXTURES WORKDIR
set -u
nst_run=$1 fixtures=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
"$fixtures" fx > /dev/null || { echo "FAIL: fixtures"; exit 1; }
failures=0 checks=0
fail() { failures=$((failures + 1)); echo "FAIL: $*"; }

M=fx/native.safetensors P=fx/photos/a.png S=fx/photos/b.jpg B=fx/bad
mkdir broken && cp $B/empty.png $B/text.png $B/truncated.png $B/truncated.jpg broken/  # photos that all fail
# Files a user's outputs could land on: by name, through a link, through
# `..`; a FIFO that would block a reader forever.
cp $P c_2.png && cp $M model.png && ln -s $P link.png && mkfifo fifo.png fifo.safetensors
mkdir gap && cp fx/tf_export/* gap/ && sed -i 's/"Variable_5": {[^}]*}, //' gap/manifest.json
long=$(printf 'n%.0s' $(seq 252)).png  # 256 bytes: longer than the file system takes
printf 'step,loss\n1,2\n' > old.csv  # a log of the user's own, which failed runs must leave alone
ffmpeg -v error -f lavfi -i testsrc=size=640x480 -frames:v 1 mid.png || echo "FAIL: ffmpeg mid.png"
# names that fit, but not the checkpoint's (+5 bytes) or a snapshot's (+2)
long_model=$(printf 'n%.0s' $(seq 243)).safetensors long_snapshot=$(printf 'n%.0s' $(seq 250)).png
O="--size 32 --iters 1 --device cpu"   # optimize and train, small and quick
# Videos (ffmpeg): 12 frames at 12 fps; an MP4 cut short, losing its index (at the end by default);
# one with its index first, cut inside its first frame; 2000 bytes of garbage over the middle of an MP4
# and of a Matroska clip; an AVI cut short (AVI says no more than its decoder's errors); a PNG named
# .mp4; 8 frames; audio at 8 kHz (FLV takes 44.1, 22.05 or 11.025); frames 8200 pixels wide.
small=(-f lavfi -i testsrc2=size=160x120:rate=24 -frames:v 6 -g 2 -pix_fmt yuv420p)
cut() { head -c $(($(stat -c %s "$1") * $2 / 100)) "$1" > "$3" && rm "$1"; }
garbage() { yes garbage | head -c 2000 | dd of="$1" bs=1 seek=$(($(stat -c %s "$1") / 2)) conv=notrunc 2> /dev/null; }
{ ffmpeg -v error -f lavfi -i testsrc2=size=64x48:rate=12 -frames:v 12 -pix_fmt yuv420p clip12.mp4 &&
  ffmpeg -v error "${small[@]}" whole.mp4 && cut whole.mp4 60 cut_index.mp4 &&
  ffmpeg -v error "${small[@]}" -movflags +faststart whole.mp4 && cut whole.mp4 10 cut_early.mp4 &&
  ffmpeg -v error "${small[@]}" garbage.mp4 && garbage garbage.mp4 &&
  ffmpeg -v error "${small[@]}" garbage.mkv && garbage garbage.mkv &&
  ffmpeg -v error -f lavfi -i testsrc2=size=160x120:rate=25 -t 1 whole.avi && cut whole.avi 60 cut.avi &&
  cp $P still.mp4 && ffmpeg -v error -i clip12.mp4 -frames:v 8 short.mp4 &&
  ffmpeg -v error -f lavfi -i testsrc2=size=64x48:rate=24 -f lavfi -i sine=sample_rate=8000 -frames:v 2 -pix_fmt yuv420p \
    audio8k.mp4 &&
  ffmpeg -v error -f lavfi -i testsrc2=size=8200x16:rate=24 -frames:v 2 -pix_fmt yuv420p wide.mp4; } ||
  { echo "FAIL: making the videos"; exit 1; }
# status | output | text stderr must hold | [NAME=VALUE ...] arguments (NAME=VALUE: the environment)
table=(
  # unreadable, corrupt or absurd inputs
  "1|o.png|nowhere.png: no such file|stylize --model $M --in nowhere.png --out o.png"
  "1|o.png|empty.png|stylize --model $M --in $B/empty.png --out o.png"
  "1|o.png|text.png|stylize --model $M --in $B/text.png --out o.png"
  "1|o.png|truncated.jpg|stylize --model $M --in $B/truncated.jpg --out o.png"
  "1|o.png|truncated.png|stylize --model $M --in $B/truncated.png --out o.png"
  "1|o.png|100000x100000|stylize --model $M --in $B/huge.png --out o.png"
  "1|o.png|1x1 pixels|stylize --model $M --in $B/one_pixel.png --out o.png"
  "1|o.png|--max-size 64 shrinks it to 64x6 pixels|stylize --model $M --in $B/panorama.png --out o.png --max-size 64"
  "1|o.png|nan.npy: holds NaN or infinite values|stylize --model $M --in $B/nan.npy --out o.png"
  "1|o.png|inf.npy: holds NaN or infinite values|stylize --model $M --in $B/inf.npy --out o.png"
  "1|o.png|nan.npy: holds NaN or infinite values|optimize --content $P --style $B/nan.npy --out o.png $O"
  "1|o.png|truncated.safetensors|stylize --model $B/truncated.safetensors --in $P --out o.png"
  "1|o.png|lie outside|stylize --model $B/offsets.safetensors --in $P --out o.png"
  "1|o.png|I32|stylize --model $B/dtype.safetensors --in $P --out o.png"
  "1|o.png|takes 5 channels|stylize --model $B/shapes.safetensors --in $P --out o.png"
  "1|o.png|NaN|stylize --model $B/nan.safetensors --in $P --out o.png"
  "1|o.png|a.png: not a valid safetensors file|stylize --model $P --in $P --out o.png"
  "1|o.png|Variable_5 is missing|stylize --model gap --in $P --out o.png"
  "1|o.safetensors|Variable_5 is missing|import --from gap --out o.safetensors"
  "1|o.safetensors|truncated.safetensors|import --from $B/truncated.safetensors --out o.safetensors"
  "1|-|offsets.safetensors|info $B/offsets.safetensors"
  "1|-|empty.png|info $B/empty.png"
  # FIFOs are refused, never waited on
  "1|-|fifo.safetensors: not a regular file|info fifo.safetensors"
  "1|o.png|fifo.safetensors: not a regular file|stylize --model fifo.safetensors --in $P --out o.png"
  "1|o.png|fifo.png: not a regular file|stylize --model $M --in fifo.png --out o.png"
  "1|o.png|fifo.png: not a regular file|optimize --content fifo.png --style $P --out o.png $O"
  "1|o.png|fifo.safetensors: not a regular file|optimize --content $P --style $P --vgg fifo.safetensors --out o.png $O"
  "1|o.safetensors|fifo.safetensors: not a regular file|train --style $P --data fx/photos --resume fifo.safetensors --out o.safetensors $O"
  "1|o.png|--log fifo.png: exists and is not a regular file|optimize --content $P --style $P --log fifo.png --out o.png $O"
  # an output that would destroy an input or another output
  "1|o.png|--log $P: the same file as --content $P|optimize --content $P --style $S --log $P --out o.png $O"
  "1|o.png|--log $S: the same file as --style $S|optimize --content $P --style $S --log $S --out o.png $O"
  "1|o.png|--log $P: the same file as --content link.png|optimize --content link.png --style $S --log $P --out o.png $O"
  "1|o.png|the same file as --content $P|optimize --content $P --style $S --log fx/../fx/photos/a.png --out o.png $O"
  "1|o.png|the same file as --init $S|optimize --content $P --style $P --init $S --log $S --out o.png $O"
  "1|o.png|--log o.png: the same file as --out o.png|optimize --content $P --style $S --log o.png --out o.png $O"
  "1|c.png|--save-every: c_2.png is the same file as --content c_2.png|optimize --content c_2.png --style $S --out c.png --save-every 2 --size 32 --iters 2 --device cpu"
  "1|c.png|--save-every: c_2.png is the same file as --log c_2.png|optimize --content $P --style $S --log c_2.png --out c.png --save-every 1 --size 32 --iters 3 --device cpu"
  "1|-|--out model.png: the same file as --model model.png|stylize --model model.png --in $P --out model.png"
  "1|o.safetensors|the same file as --data fx/photos (its file fx/photos/c.bmp)|train --style $P --data fx/photos --log fx/photos/c.bmp --out o.safetensors $O"
  "1|o.safetensors|--log o.safetensors: the same file as --out o.safetensors|train --style $P --data fx/photos --log o.safetensors --out o.safetensors $O"
  "1|o.safetensors|the same file as --resume $M|train --style $P --data fx/photos --resume $M --log $M --out o.safetensors $O"
  "1|fx/o.safetensors|would go under --data fx|train --style $P --data fx --out fx/o.safetensors --sample-every 1 --sample-image $P $O"
  "1|o.safetensors|--out fx/tf_export/Variable_3: the same file as --from fx/tf_export|import --from fx/tf_export --out fx/tf_export/Variable_3"
  "1|o.png|the input directory|stylize --model $M --in fx/photos --out fx/photos/"
  "1|-|bytes long; the file system takes at most 255|stylize --model $M --in $P --out $long"
  "1|-|bytes long; the file system takes at most|optimize --content $P --style $P --out $long $O"
  "1|-|--out's checkpoint|train --style $P --data fx/photos --out $long_model $O"
  "1|-|--save-every|optimize --content $P --style $P --out $long_snapshot --save-every 1 $O"
  # videos: unreadable, cut before a frame, damaged, not videos, what a container cannot hold, no TMPDIR
  "1|o.mp4|cut_index.mp4: not a readable video: mov,mp4,m4a,3gp,3g2,mj2: moov atom not found (the index of an MP4 or MOV is missing: truncated?)|stylize --model $M --in cut_index.mp4 --out o.mp4"
  "1|o.mp4|cut_early.mp4: no frame could be decoded, the file ends early (truncated?) (ffmpeg: |stylize --model $M --in cut_early.mp4 --out o.mp4"
  "1|o.mp4|garbage.mp4: damaged video data (ffmpeg: |stylize --model $M --in garbage.mp4 --out o.mp4"
  "1|o.mkv|garbage.mkv: damaged video data (ffmpeg: |optimize --content garbage.mkv --style $P --out o.mkv $O --quiet"
  "1|o.mp4|cut.avi: damaged video data (ffmpeg: mpeg4: |stylize --model $M --in cut.avi --out o.mp4"
  "1|o.mp4|still.mp4: a still image (png), not a video|stylize --model $M --in still.mp4 --out o.mp4"
  "1|-|still.mp4: a still image (png), not a video|video-metrics --in clip12.mp4 --stylized still.mp4"
  "1|-|video-metrics: --stylized short.mp4 ends after 8 frames, and --in clip12.mp4 has 12|video-metrics --in clip12.mp4 --stylized short.mp4"
  "1|o.mpg|o.mpg: MPEG-1 video holds only 23.976, 24, 25, 29.97, 30, 50, 59.94 or 60 frames a second, and clip12.mp4 has 12; use .mp4 or .mkv|stylize --model $M --in clip12.mp4 --out o.mpg"
  "1|o.mpg|o.mpg: MPEG-1 video holds at most 4095 pixels a side, and the frames are 8200x16; use .mp4 or .mkv|stylize --model $M --in wide.mp4 --out o.mpg"
  "1|o.avi|o.avi: ffmpeg (encoding) failed: mpeg4: dimensions too large for MPEG-4|stylize --model $M --in wide.mp4 --out o.avi"
  "1|o.flv|o.flv: ffmpeg (encoding) failed: flv: FLV does not support sample rate 8000|stylize --model $M --in audio8k.mp4 --out o.flv --quiet"
  "1|o.mp4|clip12.mp4: ffprobe: cannot create its log file in TMPDIR=/nonexistent: No such file or directory|TMPDIR=/nonexistent stylize --model $M --in clip12.mp4 --out o.mp4"
  # the command line: one clear message per number, NaN and infinity refused at parsing
  "2|o.png|--frobnicate|stylize --model $M --in $P --out o.png --frobnicate"
  "2|o.png|--max-size: expected a whole number from 16 to 65535, got 'abc'|stylize --model $M --in $P --out o.png --max-size abc"
  "2|o.png|--max-size: expected a whole number from 16 to 65535, got '0'|stylize --model $M --in $P --out o.png --max-size 0"
  "2|o.png|--max-size: expected a whole number from 16 to 65535, got '1'|stylize --model $M --in $P --out o.png --max-size 1"
  "2|o.png|got 'nan'|stylize --model $M --in $P --out o.png --max-size nan"
  "2|o.png|--batch: expected a whole number from 1 to 1024, got '0'|stylize --model $M --in $P --out o.png --batch 0"
  "1|o.png|tiles of 16 pixels are smaller than the 44 pixels this network reads around each tile|stylize --model $M --in $P --out o.png --tile 16"
  "1|o.png|tiles of 44 on a 640x480 image would cost about|stylize --model $M --in mid.png --out o.png --tile 44"
  "1|o.png|--size 65535: the result would be 65535x51365 pixels|optimize --content $P --style $P --out o.png --size 65535 --iters 1 --device cpu"
  "1|o.png|--scales 40000: the result would be|optimize --content $P --style $P --out o.png --scales 40000,64 --iters 1 --device cpu"
  "1|styled.png|the input is a directory, so the output is a directory of images|stylize --model $M --in fx/photos --out styled.png"
  "2|o.png|--model is an option of 'stylize' and goes after it: nst-run stylize --model|--model $M stylize --in $P --out o.png"
  "2|o.png|--in is an option of 'stylize'|--threads 1 --in $P stylize --model $M --out o.png"
  "1|-|--in $P: not a video|video-metrics --in $P --stylized $P"
  "1|o.png|--temporal-weight is for videos|optimize --content $P --style $P --out o.png --temporal-weight 2"
  "1|-|nowhere.mp4: cannot open: no such file|video-metrics --in nowhere.mp4 --stylized nowhere.mp4"
  "1|o.png|tile 32 is under the 80 pixels that each tile reads|optimize --content $P --style $P --out o.png --tile 32"
  "2|o.png|--tile: expected a whole number from 0 to 65535, got '-1'|optimize --content $P --style $P --out o.png --tile -1"
  "2|o.png|--iters: expected a whole number from 1 to 1000000000, got 'ten'|optimize --content $P --style $P --out o.png --iters ten"
  "2|o.png|--iters: expected a whole number from 1 to 1000000000, got '0'|optimize --content $P --style $P --out o.png --iters 0"
  "2|o.png|--lr: expected a number greater than 0, got 'nan'|optimize --content $P --style $P --out o.png --lr nan"
  "2|o.png|--lr: expected a number greater than 0, got 'inf'|optimize --content $P --style $P --out o.png --lr inf"
  "2|o.png|--lr: expected a number greater than 0, got '-1'|optimize --content $P --style $P --out o.png --lr -1"
  "2|o.png|--lr: expected a number greater than 0, got '1e-50'|optimize --content $P --style $P --out o.png --lr 1e-50"
  "2|o.png|--lr: expected a number greater than 0, got '1e39'|optimize --content $P --style $P --out o.png --lr 1e39"
  "2|o.png|--scales: expected a whole number from 16 to 65535, got '0'|optimize --content $P --style $P --out o.png --scales 0,64"
  "2|o.png|--style-blend: expected a number of at least 0, got 'nan'|optimize --content $P --style $P --style $S --style-blend nan,1 --out o.png"
  "2|o.png|--content-weight: expected a number from 0 to 1e+30, got 'inf'|optimize --content $P --style $P --out o.png --content-weight inf"
  "2|o.png|--seed: expected a whole number from 0 to 18446744073709551615, got '-1'|optimize --content $P --style $P --out o.png --seed -1"
  "2|o.safetensors|--lr: expected a number greater than 0, got 'fast'|train --style $P --data fx/photos --out o.safetensors --lr fast"
  "2|o.safetensors|--epochs: expected a number greater than 0 and at most 1000000, got 'nan'|train --style $P --data fx/photos --out o.safetensors --epochs nan"
  "2|o.safetensors|--size: expected a whole number from 16 to 4096, got '8'|train --style $P --data fx/photos --out o.safetensors --size 8"
  # other mistakes
  "1|nodir/o.png|nodir|stylize --model $M --in $P --out nodir/o.png"
  "1|o.png|text.png|optimize --content $B/text.png --style $P --out o.png $O"
  "1|o.png|truncated.jpg|optimize --content $P --style $B/truncated.jpg --out o.png $O"
  "1|o.png|100000x100000|optimize --content $P --style $B/huge.png --out o.png $O"
  "1|o.png|1x1 pixels|optimize --content $B/one_pixel.png --style $P --out o.png $O"
  "1|o.png|empty.png|optimize --content $P --style $P --init $B/empty.png --out o.png $O"
  "1|o.png|truncated.safetensors|optimize --content $P --style $P --vgg $B/truncated.safetensors --out o.png $O"
  "1|o.png|nodir|optimize --content $P --style $P --out nodir/o.png $O"
  "1|o.png|cuda:9|optimize --content $P --style $P --out o.png --iters 1 --device cuda:9"
  "1|o.safetensors|text.png|train --style $B/text.png --data fx/photos --out o.safetensors $O"
  "1|o.safetensors|1x1 pixels|train --style $B/one_pixel.png --data fx/photos --out o.safetensors $O"
  "1|o.safetensors|not a directory|train --style $P --data nowhere --out o.safetensors $O"
  "1|o.safetensors|none of the 4 image files|train --style $P --data broken --out o.safetensors $O --quiet"
  "1|o.safetensors|none of the 4 image files|train --style $P --data broken --log old.csv --out o.safetensors $O --quiet"
  "1|o.safetensors|truncated.safetensors|train --style $P --data fx/photos --resume $B/truncated.safetensors --out o.safetensors $O"
  "1|nodir/o.safetensors|nodir|train --style $P --data fx/photos --out nodir/o.safetensors $O"
  # out of memory
  "1|o.png|NST_MEMORY_LIMIT: 'lots' is not a size|NST_MEMORY_LIMIT=lots stylize --model $M --in $P --out o.png"
  "1|o.png|NST_MEMORY_LIMIT: '0x10' is not a size|NST_MEMORY_LIMIT=0x10 stylize --model $M --in $P --out o.png"
  "1|o.png|NST_MEMORY_LIMIT: '1e9' is not a size|NST_MEMORY_LIMIT=1e9 stylize --model $M --in $P --out o.png"
  "1|o.png|NST_MEMORY_LIMIT: '6XB' is not a size|NST_MEMORY_LIMIT=6XB stylize --model $M --in $P --out o.png"
  "1|o.png|too small for tiles to help); try --max-size|NST_MEMORY_LIMIT=100K stylize --model $M --in $P --out o.png"
  "1|o.png|out of memory allocating|NST_MEMORY_LIMIT=1K stylize --model $M --in $P --out o.png"
  "1|o.png|out of memory allocating|NST_MEMORY_LIMIT=50M optimize --content $P --style $P --out o.png $O"
  "1|o.safetensors|out of memory allocating|NST_MEMORY_LIMIT=50M train --style $P --data fx/photos --out o.safetensors $O"
)

# Every file here but the run's own stdout and stderr, with its checksum.
fingerprint() { find . -type f ! -name out.txt ! -name err.txt -print0 | sort -z | xargs -0 md5sum; }

for row in "${table[@]}"; do
  IFS='|' read -r want out text args <<< "$row"
  for existing in no yes; do
    rm -f o.png o.safetensors c.png o.mp4 o.mkv o.mpg o.avi o.flv
    [ "$existing" = yes ] && [ "$out" != - ] && [ "${out%/*}" = "$out" ] && echo "old contents" > "$out"
    before=$(fingerprint)
    checks=$((checks + 1))
    environment=()
    command=$args
    while [[ $command =~ ^[A-Z_]+= ]]; do environment+=("${command%% *}"); command=${command#* }; done
    # shellcheck disable=SC2086
    env "${environment[@]}" timeout -k 10 60 "$nst_run" $command > out.txt 2> err.txt
    got=$?
    what="nst-run $args (output $([ "$existing" = yes ] && echo present || echo absent))"
    if [ "$got" != "$want" ]; then fail "$what: exit $got, expected $want: $(head -c 300 err.txt)"; continue; fi
    errors=$(grep -c '^nst-run: error: ' err.txt)
    # besides: the note about the embedded VGG-19, and train's warning per unreadable photo
    others=$(grep -v '^nst-run: note: \|^nst-run: error: \|^nst-run: warning: skipping ' err.txt | wc -l)
    if [ "$errors" != 1 ] || [ "$others" != 0 ]; then fail "$what: stderr is not one error line: $(cat err.txt)"; continue; fi
    if ! grep -qF -- "$text" err.txt; then fail "$what: the error does not mention '$text': $(cat err.txt)"; continue; fi
    if [ "$out" != - ] && [ "$existing" = no ] && [ -e "$out" ]; then fail "$what: $out was created"; continue; fi
    changed=$(diff <(echo "$before") <(fingerprint) | grep '^[<>]' | head -3)
    [ -z "$changed" ] || { fail "$what: files created, changed or removed: $changed"; continue; }
    leftovers=$(find . -name '.*.tmp*' | head -3)
    [ -z "$leftovers" ] || { fail "$what: temporary files left: $leftovers"; continue; }
  done
done
echo "$((checks - failures)) of $checks bad-input runs handled cleanly"
[ "$failures" = 0 ]
