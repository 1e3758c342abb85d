#!/usr/bin/env bash
# Installs nst's build dependencies on Debian/Ubuntu (what is missing only).
# The CUDA toolkit with cuBLAS and cuDNN 9 is optional and not installed here:
# without it nst builds CPU-only.
set -euo pipefail
packages=(cmake g++ make pkg-config catch2 libdnnl-dev libstb-dev nlohmann-json3-dev libcli11-dev libzip-dev libopencv-video-dev ffmpeg)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
