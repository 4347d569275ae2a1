#!/bin/bash
# Debian 12 packages flashblock needs to build, test and benchmark
# (libmicrohttpd-dev for `flashblock serve`, chromium for its page test).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libopenblas-dev libjson-c-dev libpcre2-dev libutf8proc-dev libmicrohttpd-dev
      python3 python3-numpy python3-torch nodejs npm fortunes-min
      libopenmpi-dev openmpi-bin iproute2   # data-parallel training and its two-host test
      chromium chromium-driver)             # headless test of the server's chat page
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# node/npm may come from elsewhere (e.g. a newer node in /usr/local): keep it
if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
pk=(); for p in "${missing[@]}"; do [ -n "$p" ] && pk+=("$p"); done
if [ ${#pk[@]} -gt 0 ]; then
    echo "installing: ${pk[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pk[@]}" >/dev/null
fi
