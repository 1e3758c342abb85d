#!/usr/bin/env bash
# The quick start: on a fresh Debian/Ubuntu machine, from a clone of nst,
# installs what is missing (tools/setup.sh), builds nst-run, draws the two
# sample images and runs optimization-based style transfer with the defaults
# (512 px, coarse to fine: 250 L-BFGS iterations at 256 px, then 80 at 512;
# the embedded VGG-19; about 4 minutes on 2 CPU cores). The result is
# samples/result.png. Extra arguments go to `nst-run optimize` (for example
# --iters 100,30 for a first look sooner).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
cmake -S . -B build > /dev/null
cmake --build build -j"$(nproc)" --target nst-run nst_sample_images
build/tools/nst_sample_images samples
build/tools/nst-run optimize --content samples/content.png --style samples/style.png --out samples/result.png "$@"
echo "samples/result.png: samples/content.png in the style of samples/style.png"
