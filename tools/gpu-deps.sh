#!/usr/bin/env bash
# Gathers, into the git-ignored .gpu-deps/, what a GPU machine without a package registry needs
# besides LibTorch: Boost.Hana's, fmt's and nlohmann/json's headers, Catch2's single header and Google Benchmark's sources
# (Debian's source package). Run here once; then carry .gpu-deps to the device.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
d=.gpu-deps
rm -rf "$d" && mkdir -p "$d/include/boost" "$d/include/catch2"
cp -r /usr/include/boost/hana /usr/include/boost/hana.hpp "$d/include/boost/"
cp /usr/include/catch2/catch.hpp "$d/include/catch2/"
cp -r /usr/include/fmt "$d/include/"  # header-only (FMT_HEADER_ONLY)
cp -r /usr/include/nlohmann "$d/include/"  # header-only (checkpoints' settings)
cp /usr/include/zlib.h /usr/include/zconf.h "$d/include/"  # linked against the machine's libz.so.1
if ! ls /tmp/casdm-src/benchmark_*.orig.tar.gz >/dev/null 2>&1; then
  if ! grep -rqs "deb-src" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      > /etc/apt/sources.list.d/casdm-deb-src.sources
    apt-get update -qq
  fi
  mkdir -p /tmp/casdm-src && (cd /tmp/casdm-src && apt-get source --download-only benchmark)
fi
mkdir -p "$d/benchmark" && tar -xzf /tmp/casdm-src/benchmark_*.orig.tar.gz -C "$d/benchmark" --strip-components=1
du -sh "$d"
