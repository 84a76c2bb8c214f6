#!/usr/bin/env bash
# Installs what casdm's build, tests, examples and benchmarks need on Debian 12 (as root).
set -euo pipefail
pkgs=(cmake ninja-build g++ ccache libtorch-dev libopenblas0-pthread libboost-dev catch2 libbenchmark-dev
      zlib1g-dev libstb-dev libzip-dev nlohmann-json3-dev libcli11-dev libfmt-dev dataset-fashion-mnist
      python3-torch python3-torchvision python3-numpy python3-scipy python3-pil
      clang libclang-rt-14-dev  # clang: the libFuzzer harnesses (scripts/fuzz.sh)
      libplplot-dev plplot-driver-cairo fonts-dejavu-core  # charts (casdm/report/)
      libgloo-dev  # data-parallel training (train/distributed.hpp: c10d's ProcessGroupGloo)
      chromium)  # the reports' test: headless Chromium renders the pages (tests/report_page.py)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
