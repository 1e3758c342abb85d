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
# a failure is one error line and exit status 1
if "$work/build/embed_example" "$work/fx/native.safetensors" "$work/nowhere.png" "$work/x.png" 2> "$work/err.txt"; then
  echo "FAIL: a missing photo succeeded"; exit 1
fi
grep -q '^error: .*nowhere.png' "$work/err.txt" || { echo "FAIL: $(cat "$work/err.txt")"; exit 1; }
echo "installed package builds and runs examples/embed"
