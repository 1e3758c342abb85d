#!/usr/bin/env bash
# Seeds for the fuzz targets, from the tests' own files: the CLI fixtures
# (photos, networks, the broken inputs of the bad-input table), the
# PyTorch-written checkpoints and the TensorFlow export's manifest.
# usage: make_corpus.sh OUT_DIR NST_CLI_FIXTURES SOURCE_DIR
set -eu
out=$1 fixtures=$2 src=$3
rm -rf "$out" && mkdir -p "$out"/{safetensors,pth,manifest,image}
"$fixtures" "$out/fx" > /dev/null
cp "$out"/fx/*.safetensors "$out"/fx/bad/*.safetensors "$out/safetensors/"
cp "$src"/tests/data/pth/*.pth "$out/pth/"
cp "$out/fx/tf_export/manifest.json" "$out/manifest/"
# image inputs: one byte choosing the extension (0 png, 1 jpg, 2 bmp, 3 npy), then the file
i=0
for f in "$out"/fx/photos/* "$out"/fx/rotated.jpg "$out"/fx/upside_down.png "$out"/fx/bad/*.png "$out"/fx/bad/*.jpg "$out"/fx/bad/*.npy; do
  case "$f" in *.png) k='\x00' ;; *.jpg) k='\x01' ;; *.bmp) k='\x02' ;; *.npy) k='\x03' ;; *) continue ;; esac
  { printf "$k"; cat "$f"; } > "$out/image/seed_$i"
  i=$((i + 1))
done
rm -rf "$out/fx"
