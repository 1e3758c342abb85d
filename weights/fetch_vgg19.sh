#!/bin/sh
# Downloads the pretrained VGG-19 weights that `nst-run optimize --vgg PATH`
# reads, for users who are online (nothing is downloaded at build or test
# time):
#
#   vgg19-dcbb9e9d.pth  torchvision's VGG-19 (ImageNet, 548 MB), legacy
#                       PyTorch checkpoint; flavour "torchvision"
#   vgg19-d01eb7cb.pth  the original Caffe VGG-19 converted to PyTorch by
#                       Justin Johnson (548 MB), as used by neural-style and
#                       neural-style-pt; flavour "caffe" (BGR, 0..255)
#
# Usage: weights/fetch_vgg19.sh [DIR] [torchvision|caffe|all]   (default: weights all)
#
# Checks: torchvision names its files <name>-<first 8 hex digits of the
# file's sha256>.pth, and torch.hub verifies exactly that prefix; the full
# digests are not published, so the prefix is what this script verifies for
# the torchvision file. The Caffe file's name follows the same pattern, but
# whether its suffix is a sha256 prefix is not documented anywhere we could
# find: a mismatch there is reported as a warning and the file is kept. Set
# NST_STRICT_SHA256=1 to make that a failure too. Either way the full sha256
# is printed, so it can be recorded.
set -eu

dir=${1:-$(dirname "$0")}
which=${2:-all}
case $which in
    torchvision | caffe | all) ;;
    *) echo "usage: $0 [DIR] [torchvision|caffe|all]" >&2; exit 2 ;;
esac
mkdir -p "$dir"

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d' ' -f1
    else
        echo "fetch_vgg19: need sha256sum or shasum" >&2
        exit 1
    fi
}

download() {  # URL FILE
    if command -v curl >/dev/null 2>&1; then
        curl -fL --retry 3 -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -O "$2" "$1"
    else
        echo "fetch_vgg19: need curl or wget" >&2
        exit 1
    fi
}

# fetch URL NAME PREFIX STRICT
fetch() {
    url=$1 name=$2 prefix=$3 strict=$4
    out="$dir/$name"
    if [ -f "$out" ]; then
        echo "$out exists; checking it"
    else
        tmp="$out.part"
        echo "downloading $url"
        download "$url" "$tmp"
        mv "$tmp" "$out"
    fi
    sum=$(sha256_of "$out")
    echo "$name sha256 $sum"
    case $sum in
        "$prefix"*) echo "$name: sha256 prefix $prefix OK" ;;
        *)
            if [ "$strict" = 1 ] || [ "${NST_STRICT_SHA256:-0}" = 1 ]; then
                echo "fetch_vgg19: $name: sha256 does not start with $prefix; moved to $out.bad" >&2
                mv "$out" "$out.bad"
                exit 1
            fi
            echo "fetch_vgg19: warning: $name: sha256 does not start with $prefix (unverified for this file)" >&2
            ;;
    esac
}

case $which in
    torchvision | all)
        fetch https://download.pytorch.org/models/vgg19-dcbb9e9d.pth vgg19-dcbb9e9d.pth dcbb9e9d 1 ;;
esac
case $which in
    caffe | all)
        fetch https://web.eecs.umich.edu/~justincj/models/vgg19-d01eb7cb.pth vgg19-d01eb7cb.pth d01eb7cb 0 ;;
esac
echo "done: pass --vgg $dir/<file> to nst-run optimize"
