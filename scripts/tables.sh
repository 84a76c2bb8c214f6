#!/usr/bin/env bash
# The paper's tables at CPU scale: trains each row with casdm-train (its CPU-sized defaults, as the
# main job) and scores the rows with casdm-ablation.
#   bash scripts/tables.sh 1     # Table 1: DDPM_Eps DDPM_X0 Dual CasDM, 100 DDIM steps
#   bash scripts/tables.sh 5     # Table 5: DDPM_Eps CasDM at 10, 25, 50, 100 DDIM steps
#   bash scripts/tables.sh 4     # Table 4: CasDM CasDM_FixRes CasDM_FixRes_Concat at 10 and 100 DDIM steps
#   WEIGHTS=weights bash scripts/tables.sh 3   # Table 3: CasDM_LPIPS CasDM_ResNet CasDM_Inception CasDM_Swin
#   bash scripts/tables.sh solvers   # Table 5 with the fast solvers: DDPM_Eps CasDM CasDM_V at 10
#                                    # and 20 steps, once per sampler in SAMPLERS (ddim dpmpp2m heun),
#                                    # each into OUT/<sampler>/ (docs/results/solvers.md)
#   bash scripts/tables.sh edm   # EDM and Cas-DM on EDM beside DDPM_Eps and CasDM at 10, 18 and 50
#                                # steps, once per sampler in SAMPLERS (heun dpmpp2m-sde: one
#                                # deterministic, one stochastic), each into OUT/<sampler>/
#   bash scripts/tables.sh 15    # Tables 1 and 5 in one run: DDPM_Eps DDPM_X0 Dual CasDM
#                                # CasDM_SmallVGG DDPM_Eps_wide Dual_seed1 at 10 and 100 DDIM steps
#                                # (docs/results/)
# A row named PRESET_wide is PRESET with --model-channels 24 (WIDE_CHANNELS): about as many
# trained parameters as Cas-DM's two 16-channel networks, the control for "Cas-DM is bigger";
# PRESET_seedK is PRESET trained with --seed K, the yardstick for training noise.
# The metric row at CPU scale is CasDM_SmallVGG: its loss network is a second Fashion-MNIST
# classifier (LOSS_WEIGHTS, default weights/fmnist-loss: seed 1, narrower, made here when absent),
# not the scorer, so the loss does not optimise the very features the table is scored with.
# Environment: STEPS (training steps per row, 1200), N (samples per cell, 1000), OUT
# (docs/results/table<N>), SCORER (default weights/fmnist/small_vgg.pt, made by casdm-metric when
# absent), FEATURE_SIZE (Table 3's resize side, 32), TRAIN_ARGS (more casdm-train options: paper
# scale on a GPU is a matter of these, e.g. "--device cuda --batch 128 --model-channels 128 ..."),
# ABLATION_ARGS (more casdm-ablation options, e.g. "--device cuda --batch 500").
# Rows already trained (a checkpoint at STEPS in RUNS/<preset>) are reused; a row stopped part-way
# continues from its newest checkpoint (one every CHECKPOINT_EVERY steps, 250): run the same
# command again.
set -euo pipefail
cd "$(dirname "$0")/.."
TABLE=${1:?usage: scripts/tables.sh 1|3|4|5|15|solvers|edm}
STEPS=${STEPS:-1200} N=${N:-1000} OUT=${OUT:-docs/results/table$TABLE} RUNS=${RUNS:-out/tables}
SCORER=${SCORER:-weights/fmnist/small_vgg.pt} LOSS_WEIGHTS=${LOSS_WEIGHTS:-weights/fmnist-loss}
B=${B:-build/examples}  # the programs (a copy elsewhere lets a rebuild go on while this runs)
case $TABLE in
  1) rows=(DDPM_Eps DDPM_X0 Dual CasDM) cols=(100) ;;
  3) rows=(CasDM_LPIPS CasDM_ResNet CasDM_Inception CasDM_Swin) cols=(100)
     : "${WEIGHTS:?Table 3 needs WEIGHTS=<folder from tools/export_weights.py>}" ;;
  4) rows=(CasDM CasDM_FixRes CasDM_FixRes_Concat) cols=(10 100) ;;
  5) rows=(DDPM_Eps CasDM) cols=(10 25 50 100) ;;
  15) rows=(DDPM_Eps DDPM_X0 Dual CasDM CasDM_SmallVGG DDPM_Eps_wide Dual_seed1) cols=(10 100) ;;
  solvers) rows=(DDPM_Eps CasDM CasDM_V) cols=(10 20) ;;
  edm) rows=(DDPM_Eps CasDM EDM CasDM_EDM) cols=(10 18 50) ;;
  *) echo "unknown table $TABLE (1, 3, 4, 5, 15, solvers or edm)" >&2; exit 2 ;;
esac
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
[ -x $B/casdm-ablation ] || { bash scripts/install-deps.sh && bash scripts/configure.sh &&
  cmake --build build --target casdm-train casdm-metric casdm-ablation; }
[ -s "$SCORER" ] || $B/casdm-metric --out "$(dirname "$SCORER")"
if [[ " ${rows[*]} " == *" CasDM_SmallVGG "* ]] && [ ! -s "$LOSS_WEIGHTS/small_vgg.pt" ]; then
  $B/casdm-metric --out "$LOSS_WEIGHTS" --seed 1 --widths 16 32 64 --steps 1000
fi
args=()
for p in "${rows[@]}"; do
  run="$RUNS/$p"
  extra=() preset=${p%_wide} seed=0
  [ "$preset" != "$p" ] && extra=(--model-channels "${WIDE_CHANNELS:-24}")
  if [[ $preset =~ ^(.*)_seed([0-9]+)$ ]]; then preset=${BASH_REMATCH[1]} seed=${BASH_REMATCH[2]}; fi
  [ "$TABLE" = 3 ] && extra=(--feature-weights "$WEIGHTS" --feature-size "${FEATURE_SIZE:-32}")
  [ "$p" = CasDM_SmallVGG ] && extra=(--feature-weights "$LOSS_WEIGHTS")
  [ "$p" = CasDM_Inception ] && extra=(--feature-weights "$WEIGHTS" --feature-size "${FEATURE_SIZE_INCEPTION:-75}")
  if [ ! -s "$run/checkpoints/$(printf 'ckpt-%09d.pt' "$STEPS")" ]; then
    # A row stopped part-way (a signal, the end of a session) continues from its newest checkpoint.
    resume=()
    if compgen -G "$run/checkpoints/ckpt-*.pt" > /dev/null; then resume=(--resume); else rm -rf "$run"; fi
    $B/casdm-train --preset "$preset" --steps "$STEPS" --checkpoint-every "${CHECKPOINT_EVERY:-250}" \
      --sample-every "$STEPS" --seed "$seed" --out "$run" "${extra[@]}" ${TRAIN_ARGS:-} "${resume[@]}"
  fi
  args+=(--row "$p=$run")
done
if [ "$TABLE" = solvers ] || [ "$TABLE" = edm ]; then
  [ "$TABLE" = edm ] && samplers=${SAMPLERS:-heun dpmpp2m-sde} what="EDM beside DDPM" || samplers=${SAMPLERS:-ddim dpmpp2m heun} what="Table 5"
  for s in $samplers; do
    $B/casdm-ablation "${args[@]}" --steps "${cols[@]}" --sampler "$s" --scorer "$SCORER" -n "$N" --out "$OUT/$s" ${ABLATION_ARGS:-} \
      --title "$what with $s at CPU scale ($STEPS training steps per row)"
  done
  exit 0
fi
$B/casdm-ablation "${args[@]}" --steps "${cols[@]}" --scorer "$SCORER" -n "$N" --out "$OUT" ${ABLATION_ARGS:-} \
  --title "$( [ "$TABLE" = 15 ] && echo "Tables 1 and 5" || echo "Table $TABLE") at CPU scale ($STEPS training steps per row)"
