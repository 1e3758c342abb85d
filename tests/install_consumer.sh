#!/usr/bin/env bash
# CTest install_consumer: installs this build into a scratch prefix, then
# configures, builds and runs examples/embed against the installed package
# (find_package(nst), nst::nst), as a program embedding libnst would.
# usage: install_consumer.sh BUILD_DIR SOURCE_DIR WORK_DIR FIXTURES
set -eu
build=$1 src=$2 work=$3 fixtures=$4
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
test -f "$work/prefix/include/nst/nst.hpp" || { echo "FAIL: nst/nst.hpp not installed"; exit 1; }
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
echo "installed package builds and runs examples/embed"
