#!/usr/bin/env bash
# CTest cli_bad_input: the table of bad inputs every nst-run command must
# survive. Each row runs twice, once with the output absent and once with a
# file already there; each time nst-run must exit with the row's status (1:
# bad input, 2: bad command line) and write exactly one line,
# "nst-run: error: ...", to stderr (a row may name text that line must hold),
# must not crash, and must neither create the output nor touch the old one.
# (Allowed besides: the note that the embedded VGG-19 is used, and train's
# one warning per unreadable photo.)
# usage: cli_bad_input.sh NST_RUN FIXTURES WORKDIR
set -u
nst_run=$1 fixtures=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
"$fixtures" fx > /dev/null || { echo "FAIL: fixtures"; exit 1; }
failures=0 checks=0
fail() { failures=$((failures + 1)); echo "FAIL: $*"; }

M=fx/native.safetensors P=fx/photos/a.png B=fx/bad
mkdir broken && cp $B/empty.png $B/text.png $B/truncated.png $B/truncated.jpg broken/  # photos that all fail
# status | output | text stderr must hold | [NAME=VALUE ...] arguments (NAME=VALUE: the environment)
table=(
  "1|o.png|nowhere.png: no such file|stylize --model $M --in nowhere.png --out o.png"
  "1|o.png|empty.png|stylize --model $M --in $B/empty.png --out o.png"
  "1|o.png|text.png|stylize --model $M --in $B/text.png --out o.png"
  "1|o.png|truncated.jpg|stylize --model $M --in $B/truncated.jpg --out o.png"
  "1|o.png|truncated.png|stylize --model $M --in $B/truncated.png --out o.png"
  "1|o.png|100000x100000|stylize --model $M --in $B/huge.png --out o.png"
  "1|o.png|1x1 pixels|stylize --model $M --in $B/one_pixel.png --out o.png"
  "1|o.png|truncated.safetensors|stylize --model $B/truncated.safetensors --in $P --out o.png"
  "1|o.png|lie outside|stylize --model $B/offsets.safetensors --in $P --out o.png"
  "1|o.png|I32|stylize --model $B/dtype.safetensors --in $P --out o.png"
  "1|o.png|takes 5 channels|stylize --model $B/shapes.safetensors --in $P --out o.png"
  "1|o.png|NaN|stylize --model $B/nan.safetensors --in $P --out o.png"
  "1|o.png|a.png: not a valid safetensors file|stylize --model $P --in $P --out o.png"
  "2|o.png|--frobnicate|stylize --model $M --in $P --out o.png --frobnicate"
  "2|o.png|--max-size|stylize --model $M --in $P --out o.png --max-size abc"
  "1|nodir/o.png|nodir|stylize --model $M --in $P --out nodir/o.png"
  "1|o.png|the image is too small|stylize --model $M --in $P --out o.png --max-size 3"
  "1|o.safetensors|truncated.safetensors|import --from $B/truncated.safetensors --out o.safetensors"
  "1|-|offsets.safetensors|info $B/offsets.safetensors"
  "1|-|empty.png|info $B/empty.png"
  "1|o.png|text.png|optimize --content $B/text.png --style $P --out o.png --size 32 --iters 1 --device cpu"
  "1|o.png|truncated.jpg|optimize --content $P --style $B/truncated.jpg --out o.png --size 32 --iters 1 --device cpu"
  "1|o.png|100000x100000|optimize --content $P --style $B/huge.png --out o.png --size 32 --iters 1 --device cpu"
  "1|o.png|1x1 pixels|optimize --content $B/one_pixel.png --style $P --out o.png --size 32 --iters 1 --device cpu"
  "1|o.png|empty.png|optimize --content $P --style $P --init $B/empty.png --out o.png --size 32 --iters 1 --device cpu"
  "1|o.png|truncated.safetensors|optimize --content $P --style $P --vgg $B/truncated.safetensors --out o.png --size 32 --iters 1 --device cpu"
  "1|o.png|nodir|optimize --content $P --style $P --out nodir/o.png --size 32 --iters 1 --device cpu"
  "2|o.png|--iters|optimize --content $P --style $P --out o.png --iters ten"
  "1|o.png|cuda:9|optimize --content $P --style $P --out o.png --iters 1 --device cuda:9"
  "1|o.safetensors|text.png|train --style $B/text.png --data fx/photos --out o.safetensors --size 32 --iters 1 --device cpu"
  "1|o.safetensors|1x1 pixels|train --style $B/one_pixel.png --data fx/photos --out o.safetensors --size 32 --iters 1 --device cpu"
  "1|o.safetensors|not a directory|train --style $P --data nowhere --out o.safetensors --size 32 --iters 1 --device cpu"
  "1|o.safetensors|none of the 4 image files|train --style $P --data broken --out o.safetensors --size 32 --iters 1 --device cpu --quiet"
  "1|o.safetensors|truncated.safetensors|train --style $P --data fx/photos --resume $B/truncated.safetensors --out o.safetensors --size 32 --iters 1 --device cpu"
  "1|nodir/o.safetensors|nodir|train --style $P --data fx/photos --out nodir/o.safetensors --size 32 --iters 1 --device cpu"
  "2|o.safetensors|--lr|train --style $P --data fx/photos --out o.safetensors --lr fast"
  "1|o.png|NST_MEMORY_LIMIT: 'lots' is not a size|NST_MEMORY_LIMIT=lots stylize --model $M --in $P --out o.png"
  "1|o.png|too small for tiles to help); try --max-size|NST_MEMORY_LIMIT=100K stylize --model $M --in $P --out o.png"
  "1|o.png|out of memory allocating|NST_MEMORY_LIMIT=1K stylize --model $M --in $P --out o.png"
  "1|o.png|out of memory allocating|NST_MEMORY_LIMIT=50M optimize --content $P --style $P --out o.png --size 32 --iters 1 --device cpu"
  "1|o.safetensors|out of memory allocating|NST_MEMORY_LIMIT=50M train --style $P --data fx/photos --out o.safetensors --size 32 --iters 1 --device cpu"
)

for row in "${table[@]}"; do
  IFS='|' read -r want out text args <<< "$row"
  for existing in no yes; do
    rm -f o.png o.safetensors
    [ "$existing" = yes ] && [ "$out" != - ] && [ "${out%/*}" = "$out" ] && echo "old contents" > "$out"
    checks=$((checks + 1))
    environment=()
    command=$args
    while [[ $command == NST_*=* ]]; do environment+=("${command%% *}"); command=${command#* }; done
    # shellcheck disable=SC2086
    env "${environment[@]}" "$nst_run" $command > out.txt 2> err.txt
    got=$?
    what="nst-run $args (output $([ "$existing" = yes ] && echo present || echo absent))"
    if [ "$got" != "$want" ]; then fail "$what: exit $got, expected $want: $(head -c 300 err.txt)"; continue; fi
    errors=$(grep -c '^nst-run: error: ' err.txt)
    # besides: the note about the embedded VGG-19, and train's warning per unreadable photo
    others=$(grep -v '^nst-run: note: \|^nst-run: error: \|^nst-run: warning: skipping ' err.txt | wc -l)
    if [ "$errors" != 1 ] || [ "$others" != 0 ]; then fail "$what: stderr is not one error line: $(cat err.txt)"; continue; fi
    if ! grep -q -- "$text" err.txt; then fail "$what: the error does not mention '$text': $(cat err.txt)"; continue; fi
    if [ "$out" != - ]; then
      if [ "$existing" = yes ] && [ -e "$out" ]; then
        [ "$(cat "$out")" = "old contents" ] || { fail "$what: $out was overwritten"; continue; }
      elif [ -e "$out" ]; then
        fail "$what: $out was created"; continue
      fi
    fi
    leftovers=$(find . -maxdepth 1 -name '.*.tmp*' | head -3)
    [ -z "$leftovers" ] || { fail "$what: temporary files left: $leftovers"; continue; }
  done
done
echo "$((checks - failures)) of $checks bad-input runs handled cleanly"
[ "$failures" = 0 ]
