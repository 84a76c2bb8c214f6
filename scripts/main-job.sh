#!/usr/bin/env bash
# The main job: trains the CasDM preset on Fashion-MNIST on the CPU (a few minutes) and writes
# out/main-job/: samples.png (EMA weights), samples-<step>.png, data.png, loss.png (one curve per
# loss term), losses.csv, run.json (settings and figures) and checkpoints/.
# Extra arguments go to casdm-train (e.g. --steps 2400 --resume to continue the run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/configure.sh
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
cmake --build build --target casdm-train
# A fresh run each time, unless --resume continues the last one (later options win: --steps 2400).
for a in "$@"; do [ "$a" = --resume ] && keep=1; done
[ -n "${keep:-}" ] || rm -rf out/main-job
./build/examples/casdm-train --preset CasDM --steps 1200 --checkpoint-every 400 --sample-every 400 --out out/main-job "$@"
