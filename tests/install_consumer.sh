#!/usr/bin/env bash
# CTest install_consumer: installs this build into a scratch prefix, then
# configures, builds and runs examples/embed against the installed package
# (find_package(nst), nst::nst and nst::video), as a program embedding libnst
# would, and compares what it writes with what nst-run writes. The video
# part needs ffmpeg and is skipped without it.
# usage: install_consumer.sh BUILD_DIR SOURCE_DIR WORK_DIR FIXTURES
set -eu
build=$1 src=$2 work=$3 fixtures=$4
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
for f in include/nst/nst.hpp include/nst/video.hpp lib/libnst.a lib/libnst_video.a; do
  test -f "$work/prefix/$f" || { echo "FAIL: $f not installed"; exit 1; }
done
if find "$work/prefix/include" -name '*.hpp' ! -path '*/include/nst/*' | grep -q .; then
  echo "FAIL: internal headers installed:"; find "$work/prefix/include" -name '*.hpp' ! -path '*/include/nst/*'; exit 1
fi
cmake -S "$src/examples/embed" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release > "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
"$fixtures" "$work/fx" > /dev/null
"$work/build/embed_example" "$work/fx/native.safetensors" "$work/fx/photos/a.png" "$work/out.png"
test -s "$work/out.png" || { echo "FAIL: the example wrote no image"; exit 1; }
# the API runs what nst-run runs: the same bytes as nst-run stylize
"$build/tools/nst-run" stylize --model "$work/fx/native.safetensors" --in "$work/fx/photos/a.png" \
  --out "$work/cli.png" --quiet
cmp -s "$work/out.png" "$work/cli.png" || { echo "FAIL: the example's image differs from nst-run's"; exit 1; }
"$work/build/embed_example" "$work/fx/native.safetensors" "$work/fx/large.png" "$work/tiled.png" --tile 64 --threads 1
"$build/tools/nst-run" stylize --model "$work/fx/native.safetensors" --in "$work/fx/large.png" \
  --out "$work/cli_tiled.png" --tile 64 --quiet
cmp -s "$work/tiled.png" "$work/cli_tiled.png" || { echo "FAIL: tiled, the example's image differs from nst-run's"; exit 1; }
"$work/build/embed_example" "$work/fx/native.safetensors" "$work/fx/large.png" "$work/p.png" --plan --tile 64 > "$work/plan.txt"
grep -q 'in tiles of 64' "$work/plan.txt" || { echo "FAIL: the plan: $(cat "$work/plan.txt")"; exit 1; }
test ! -e "$work/p.png" || { echo "FAIL: --plan wrote an image"; exit 1; }
# a failure is one error line and exit status 1
if "$work/build/embed_example" "$work/fx/native.safetensors" "$work/nowhere.png" "$work/x.png" 2> "$work/err.txt"; then
  echo "FAIL: a missing photo succeeded"; exit 1
fi
grep -q '^error: .*nowhere.png' "$work/err.txt" || { echo "FAIL: $(cat "$work/err.txt")"; exit 1; }

# ---- videos through <nst/video.hpp>: the frames nst-run writes ----
if ! command -v ffmpeg > /dev/null || ! command -v ffprobe > /dev/null; then
  echo "ffmpeg not installed: the video example (examples/embed/video.cpp) not run"
  echo "installed package builds and runs examples/embed (images)"
  exit 0
fi
ffmpeg -v error -f lavfi -i testsrc=size=48x36:rate=12 -frames:v 6 -pix_fmt yuv420p "$work/clip.mp4"
# same_frames A B: both decode to the same 6 frames, byte for byte
same_frames() {
  ffmpeg -v error -i "file:$1" -f rawvideo -pix_fmt rgb24 "$work/a.rgb" -y &&
    ffmpeg -v error -i "file:$2" -f rawvideo -pix_fmt rgb24 "$work/b.rgb" -y || return 1
  test "$(stat -c %s "$work/a.rgb")" = $((6 * $3)) && cmp -s "$work/a.rgb" "$work/b.rgb"
}
"$work/build/embed_video" "$work/fx/tf_export" "$work/clip.mp4" "$work/video.mp4" --batch 4 \
  > "$work/video.txt" 2> "$work/video_err.txt" || { echo "FAIL: embed_video: $(cat "$work/video_err.txt")"; exit 1; }
grep -q '^6 frames written' "$work/video.txt" || { echo "FAIL: embed_video said: $(cat "$work/video.txt")"; exit 1; }
"$build/tools/nst-run" stylize --model "$work/fx/tf_export" --in "$work/clip.mp4" --out "$work/cli.mp4" \
  --batch 4 --quiet
same_frames "$work/video.mp4" "$work/cli.mp4" $((48 * 36 * 3)) ||
  { echo "FAIL: the example's video differs from nst-run stylize's"; exit 1; }
"$work/build/embed_video" --optimize "$work/fx/photos/a.png" "$work/clip.mp4" "$work/opt.mp4" --size 32 --iters 3 \
  > /dev/null 2> "$work/video_err.txt" || { echo "FAIL: embed_video --optimize: $(cat "$work/video_err.txt")"; exit 1; }
"$build/tools/nst-run" optimize --content "$work/clip.mp4" --style "$work/fx/photos/a.png" --out "$work/cli_opt.mp4" \
  --size 32 --iters 3 --vgg random --quiet
same_frames "$work/opt.mp4" "$work/cli_opt.mp4" $((32 * 24 * 3)) ||
  { echo "FAIL: the example's optimized video differs from nst-run optimize's"; exit 1; }
if "$work/build/embed_video" "$work/fx/native.safetensors" "$work/nowhere.mp4" "$work/x.mp4" 2> "$work/err.txt"; then
  echo "FAIL: a missing clip succeeded"; exit 1
fi
grep -q '^error: .*nowhere.mp4' "$work/err.txt" || { echo "FAIL: $(cat "$work/err.txt")"; exit 1; }
echo "installed package builds and runs examples/embed (images and videos)"
