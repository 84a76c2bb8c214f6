#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, runs every test with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/configure.sh
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
cmake --build build
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
