#!/usr/bin/env bash
# Class-conditional Cas-DM on Fashion-MNIST at CPU scale, with classifier-free guidance
# (docs/results/conditional.md): trains CasDM with --class-cond (the main job's CPU defaults), then
# for each guidance scale in GUIDANCE draws N samples (class i % 10 for sample i) and scores them with
# the Fashion-MNIST classifier: its accuracy on the labels asked for, the FD and the domain score;
# and a 10-class grid per scale (10 samples of each class, one class per column).
#   bash scripts/conditional.sh
# Environment: STEPS (3000), N (1000), SAMPLE_STEPS (DDIM steps, 20), GUIDANCE ("0 1 3"),
# OUT (docs/results/conditional), RUN (out/conditional/CasDM), SCORER (weights/fmnist/small_vgg.pt,
# made by casdm-metric when absent), B (the programs, build/examples).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-3000} N=${N:-1000} SAMPLE_STEPS=${SAMPLE_STEPS:-20} GUIDANCE=${GUIDANCE:-0 1 3}
OUT=${OUT:-docs/results/conditional} RUN=${RUN:-out/conditional/CasDM} SCORER=${SCORER:-weights/fmnist/small_vgg.pt}
B=${B:-build/examples}
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
[ -x $B/casdm-eval ] || { bash scripts/install-deps.sh && bash scripts/configure.sh &&
  cmake --build build --target casdm-train casdm-metric casdm-eval casdm-sample; }
[ -s "$SCORER" ] || $B/casdm-metric --out "$(dirname "$SCORER")"
if [ ! -s "$RUN/checkpoints/$(printf 'ckpt-%09d.pt' "$STEPS")" ]; then
  rm -rf "$RUN"
  $B/casdm-train --preset CasDM --class-cond --steps "$STEPS" --checkpoint-every "$STEPS" --sample-every "$STEPS" \
    --samples 100 --out "$RUN"
fi
mkdir -p "$OUT"
for w in $GUIDANCE; do
  $B/casdm-eval --checkpoint "$RUN" --scorer "$SCORER" -n "$N" --steps "$SAMPLE_STEPS" --class all --guidance "$w" \
    --bootstrap 50 --out "$OUT/eval-w$w.json"
  $B/casdm-sample --checkpoint "$RUN" -n 100 --columns 10 --class all --guidance "$w" --steps "$SAMPLE_STEPS" \
    --out "$OUT/grid-w$w"
  cp "$OUT/grid-w$w/samples.png" "$OUT/grid-w$w.png" && rm -rf "$OUT/grid-w$w"
done
