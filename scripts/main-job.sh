#!/usr/bin/env bash
# The main job: trains the CasDM preset on Fashion-MNIST on the CPU (a few minutes) and writes
# out/main-job/{samples.png,data.png,loss.png,losses.csv,run.json}. Extra arguments go to casdm-train.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/configure.sh
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
cmake --build build --target casdm-train
./build/examples/casdm-train --preset CasDM --out out/main-job "$@"
