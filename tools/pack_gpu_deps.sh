#!/usr/bin/env bash
# Packs what the GPU machine lacks (Catch2, stb, nlohmann-json, CLI11, libzip,
# oneDNN with the OpenMP and OpenCL loader libraries it links, OpenCV's video
# module and its libraries, from this machine's Debian packages) into
# .gpu/deps.tar.xz, a git-ignored folder that the device tool carries.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
p=$tmp/prefix
mkdir -p "$p/include/stb" "$p/lib/cmake"
cp -r /usr/include/catch2 "$p/include/"
cp -r /usr/lib/cmake/Catch2 "$p/lib/cmake/"
cp /usr/lib/libCatch2WithMain.a "$p/lib/"
cp /usr/include/stb/stb_image*.h "$p/include/stb/"
cp -r /usr/include/nlohmann /usr/include/CLI "$p/include/"
cp /usr/include/zip.h /usr/include/zipconf.h "$p/include/"
cp -L /usr/lib/x86_64-linux-gnu/libzip.so.4 "$p/lib/" && ln -s libzip.so.4 "$p/lib/libzip.so"
cp -L /usr/lib/x86_64-linux-gnu/libdnnl.so.2 /usr/lib/x86_64-linux-gnu/libgomp.so.1 \
   /usr/lib/x86_64-linux-gnu/libOpenCL.so.1 "$p/lib/"
ln -s libdnnl.so.2 "$p/lib/libdnnl.so"  # for running the carried binaries (tools/gpu_check.sh)
# OpenCV's optical flow (nst-run's video stabilization and video-metrics) and
# what it pulls in (about 15 MB packed), the C and C++ runtimes aside.
video=$(ls /usr/lib/x86_64-linux-gnu/libopencv_video.so.4* | head -1)
for lib in "$video" $(ldd "$video" | awk '/=> \// {print $3}'); do
  case $(basename "$lib") in libc.so*|libm.so*|libstdc++*|libgcc_s*|ld-linux*) continue ;; esac
  cp -L "$lib" "$p/lib/"
done
mkdir -p .gpu
tar cJf .gpu/deps.tar.xz -C "$tmp" prefix
rm -rf "$tmp"
ls -la .gpu/deps.tar.xz
