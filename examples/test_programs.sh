#!/usr/bin/env bash
# End-to-end tests of casdm-train, casdm-sample and casdm-metric at a tiny size, one case per CTest entry:
#   test_programs.sh BIN_DIR SCRATCH_DIR PYTHON CASE
# A refusal case checks the exit status (1), the message, and that nothing was left behind
# (no checkpoint, no temporary file).
set -uo pipefail
BIN=$1 SCRATCH=$2 PY=$3 CASE=$4
HERE=$(cd "$(dirname "$0")" && pwd)
W="$SCRATCH/$CASE"
rm -rf "$W" && mkdir -p "$W"
TINY=(--batch 4 --samples 4 --sample-steps 2 --diffusion-steps 20 --model-channels 8 --threads 1
      --log-every 1)
FMNIST=/usr/share/datasets/fashion-mnist

fail() { echo "FAIL: $*"; exit 1; }
# refuse "expected message" command...: exit 1, message on stderr, no files of a run left behind.
refuse() {
  local expect=$1; shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  echo "$out"
  [ "$rc" -eq 1 ] || fail "exit status $rc, expected 1"
  grep -qF -- "$expect" <<<"$out" || fail "message lacks: $expect"
  if find "$W" -name 'ckpt-*' -o -name '*.tmp*' -o -name 'samples.pt' | grep -q .; then
    find "$W" -newer "$W/.start" -type f; fail "files left behind"
  fi
}
touch "$W/.start"

case $CASE in
  train)  # checkpoints every 2 steps (keep 2), sample grids, the figures, --help listing presets
    "$BIN/casdm-train" "${TINY[@]}" --steps 6 --checkpoint-every 2 --keep 2 --sample-every 2 --out "$W/run" || fail "run"
    for f in checkpoints/ckpt-000000004.pt checkpoints/ckpt-000000006.pt samples-000000002.png samples-000000004.png \
             samples.png data.png loss.png loss.svg losses.csv run.json index.html; do
      [ -s "$W/run/$f" ] || fail "missing $f"
    done
    [ ! -e "$W/run/checkpoints/ckpt-000000002.pt" ] || fail "kept more than 2 checkpoints"
    [ "$(wc -l < "$W/run/losses.csv")" -eq 7 ] || fail "losses.csv should have a header and 6 rows"
    head -1 "$W/run/losses.csv" | grep -qx "step,total,eps,x0,mu" || fail "losses.csv header"
    "$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['preset']=='CasDM' and j['steps']==6, j" \
      "$W/run/run.json" || fail "run.json"
    help=$("$BIN/casdm-train" --help) || fail "--help"
    for p in DDPM_Eps DDPM_X0 Dual CasDM CasDM_FixRes CasDM_FixRes_Concat; do grep -q "$p" <<<"$help" || fail "--help lacks $p"; done
    for o in --resume --micro-batch --grad-clip --hflip --phi-model-channels --checkpoint-every; do
      grep -q -- "$o" <<<"$help" || fail "--help lacks $o"
    done ;;
  resume)  # 6 steps straight = 3 steps + resume to 6, bit for bit (weights, EMA, optimiser), and the log
    args=("${TINY[@]}" --dropout 0.1 --micro-batch 2 --grad-clip 1 --hflip --ema 0.9 0.99)
    # Sample grids on one side only: drawing them must not disturb the run's generator.
    "$BIN/casdm-train" "${args[@]}" --steps 6 --sample-every 1 --out "$W/straight" || fail "straight run"
    "$BIN/casdm-train" "${args[@]}" --steps 3 --out "$W/split" || fail "first half"
    "$BIN/casdm-train" --resume --steps 6 --threads 1 --samples 4 --sample-steps 2 --out "$W/split" || fail "resume"
    "$PY" "$HERE/../tests/reference/same_checkpoint.py" "$W/straight/checkpoints/ckpt-000000006.pt" \
      "$W/split/checkpoints/ckpt-000000006.pt" || fail "resumed run differs"
    cmp "$W/straight/losses.csv" "$W/split/losses.csv" || fail "loss logs differ"
    # One step more makes a difference the comparison sees.
    "$BIN/casdm-train" --resume --steps 7 --threads 1 --samples 4 --sample-steps 2 --out "$W/split" || fail "step 7"
    ! "$PY" "$HERE/../tests/reference/same_checkpoint.py" "$W/straight/checkpoints/ckpt-000000006.pt" \
      "$W/split/checkpoints/ckpt-000000007.pt" >/dev/null || fail "the comparison cannot tell runs apart" ;;
  sample)  # DDIM from EMA, ancestral from raw weights; the tensor file read by Python
    "$BIN/casdm-train" "${TINY[@]}" --steps 4 --preset Dual --out "$W/run" || fail "train"
    "$BIN/casdm-sample" --checkpoint "$W/run" -n 8 --steps 3 --batch 2 --threads 1 -n 5 --out "$W/ddim" || fail "ddim"  # the last -n wins
    "$BIN/casdm-sample" --checkpoint "$W/run/checkpoints/ckpt-000000004.pt" -n 3 --sampler ancestral --steps 5 \
      --weights raw --threads 1 --out "$W/anc" || fail "ancestral"
    out=$("$BIN/casdm-sample" --checkpoint "$W/run" -n 1000000000 --threads 1 --out "$W/big" 2>&1); rc=$?
    [ $rc -eq 1 ] && grep -qF "casdm-sample: --n: 1000000000 samples of 1x28x28 need 3.14e+03 GB of memory as float32" <<<"$out" ||
      { echo "$out"; fail "-n 1000000000"; }
    [ ! -e "$W/big" ] || fail "-n 1000000000 left $W/big"
    "$PY" -c "
import sys, torch
for path, n, w, s in [(sys.argv[1], 5, 'ema 0.99', 'ddim'), (sys.argv[2], 3, 'raw', 'ancestral')]:
    d = torch.load(path, weights_only=True)
    x = d['samples']
    assert x.shape == (n, 1, 28, 28), x.shape
    assert x.min() >= -1 and x.max() <= 1 and torch.isfinite(x).all()
    assert d['casdm.weights'] == w and d['casdm.sampler'] == s and d['casdm.preset'] == 'Dual', d
" "$W/ddim/samples.pt" "$W/anc/samples.pt" || fail "samples.pt"
    # The stochastic samplers: η 1 unless given; the same seed, the same samples.
    for e in "" "--eta 0.5"; do
      for k in 1 2; do
        "$BIN/casdm-sample" --checkpoint "$W/run" -n 2 --sampler dpmpp3m-sde --steps 4 $e --threads 1 --out "$W/sde$k" || fail "dpmpp3m-sde $e"
      done
      cmp "$W/sde1/samples.pt" "$W/sde2/samples.pt" || fail "dpmpp3m-sde $e: one seed, other samples"
    done
    # --trajectory: x0 estimates every 2 of 5 Heun steps (steps 2, 4 and 5) of the first 3 images, a row each.
    "$BIN/casdm-sample" --checkpoint "$W/run" -n 4 --sampler heun --steps 5 --trajectory 2 --columns 3 --threads 1 \
      --out "$W/traj" || fail "trajectory"
    "$PY" -c "
import sys, PIL.Image
a, b = PIL.Image.open(sys.argv[1] + '/trajectory.png'), PIL.Image.open(sys.argv[1] + '/samples.png')
assert a.size[0] == b.size[0] and a.size[1] == a.size[0], (a.size, b.size)  # 3 x 3 as samples.png is 3 wide
assert 'every 2 steps' in a.text.get('Description'), a.text
" "$W/traj" || fail "trajectory.png"
    "$PY" -c "
import sys, PIL.Image
d = PIL.Image.open(sys.argv[1]).text.get('Description')
assert d == 'Dual, step 4, ema 0.99 weights, ddim 3 steps, seed 0', d
" "$W/ddim/samples.png" || fail "samples.png does not say what it shows"
    # The solvers beyond the paper, on a v-prediction cascade: DPM-Solver++(2M) and Heun.
    "$BIN/casdm-train" "${TINY[@]}" --steps 2 --preset CasDM_V --out "$W/runv" || fail "train CasDM_V"
    "$BIN/casdm-sample" --checkpoint "$W/runv" -n 2 --sampler dpmpp2m --steps 4 --threads 1 --out "$W/dpm" || fail "dpmpp2m"
    "$BIN/casdm-sample" --checkpoint "$W/runv" -n 2 --sampler heun --steps 3 --threads 1 --out "$W/heun" || fail "heun"
    "$BIN/casdm-sample" --checkpoint "$W/runv" -n 2 --sampler heun --steps 3 --exact-sigmas --threads 1 --out "$W/heunx" || fail "heun, exact sigmas"
    for k in 1 2; do  # EDM's churn: one seed, one result
      "$BIN/casdm-sample" --checkpoint "$W/runv" -n 2 --sampler heun --steps 3 --churn 40 --churn-noise 1.003 --threads 1 \
        --out "$W/churn$k" || fail "heun with churn"
    done
    cmp "$W/churn1/samples.pt" "$W/churn2/samples.pt" || fail "churn: one seed, other samples"
    "$PY" -c "
import sys, torch
d = torch.load(sys.argv[1] + '/samples.pt', weights_only=True)
assert d['casdm.churn'] == '40 in [0, inf], noise 1.003', d['casdm.churn']
assert (d['samples'] - torch.load(sys.argv[2] + '/samples.pt', weights_only=True)['samples']).abs().max() > 1e-4
" "$W/churn1" "$W/heun" || fail "churn samples"
    "$PY" -c "
import sys, torch, PIL.Image
for path, s, sig in [(sys.argv[1], 'dpmpp2m', 'snapped'), (sys.argv[2], 'heun', 'snapped'), (sys.argv[3], 'heun', 'exact')]:
    d = torch.load(path + '/samples.pt', weights_only=True)
    assert d['samples'].shape == (2, 1, 28, 28) and torch.isfinite(d['samples']).all(), d['samples'].shape
    assert d['casdm.sampler'] == s and d['casdm.preset'] == 'CasDM_V' and d['casdm.sigmas'] == sig, d
    desc = PIL.Image.open(path + '/samples.png').text.get('Description')
    assert desc.startswith('CasDM_V, step 2, ') and s in desc, desc
a, b = (torch.load(p + '/samples.pt', weights_only=True)['samples'] for p in sys.argv[2:4])
assert (a - b).abs().max() > 1e-4, 'exact sigmas sampled what snapped ones did'
" "$W/dpm" "$W/heun" "$W/heunx" || fail "solver samples"
    # EDM's side: Cas-DM on EDM trains (σ drawn anywhere), samples with its own Heun at exact σ (churn
    # too) and with DDIM on its levels; the record says the σ were exact without --exact-sigmas.
    "$BIN/casdm-train" "${TINY[@]}" --steps 2 --preset CasDM_EDM --out "$W/rune" || fail "train CasDM_EDM"
    "$BIN/casdm-sample" --checkpoint "$W/rune" -n 2 --sampler heun --steps 3 --churn 40 --threads 1 --out "$W/edmh" || fail "CasDM_EDM heun"
    "$BIN/casdm-sample" --checkpoint "$W/rune" -n 2 --steps 3 --threads 1 --out "$W/edmd" || fail "CasDM_EDM ddim"
    "$PY" -c "
import json, sys, torch
for path, s, sig in [(sys.argv[1], 'heun', 'exact'), (sys.argv[2], 'ddim', 'snapped')]:
    d = torch.load(path + '/samples.pt', weights_only=True)
    assert d['samples'].shape == (2, 1, 28, 28) and torch.isfinite(d['samples']).all(), d['samples'].shape
    assert d['casdm.preset'] == 'CasDM_EDM' and d['casdm.sampler'] == s and d['casdm.sigmas'] == sig, d
c = torch.load(sys.argv[3], weights_only=True)
assert c['casdm.identity'] == 'edm | cascaded-edm(unet <- x0star, unet) | x0star@edm:1 + x0:1 + mu:1', c['casdm.identity']
" "$W/edmh" "$W/edmd" "$W/rune/checkpoints/ckpt-000000002.pt" || fail "CasDM_EDM samples"
    # SIGTERM while sampling: the batch under way finishes, nothing is written, exit 143.
    "$BIN/casdm-sample" --checkpoint "$W/run" -n 100000 --steps 20 --batch 2 --threads 1 --out "$W/sig" 2> "$W/sig.err" & pid=$!
    for _ in $(seq 600); do grep -q "^sampled 2/" "$W/sig.err" && break; sleep 0.1; done
    kill -TERM $pid; wait $pid; rc=$?
    tail -2 "$W/sig.err"
    [ $rc -eq 143 ] || fail "exit status $rc after SIGTERM, expected 143"
    grep -qF "casdm-sample: stopped by SIGTERM while sampling; nothing written" "$W/sig.err" || fail "no stop message"
    [ -z "$(ls -A "$W/sig")" ] || fail "files written by a stopped casdm-sample: $(ls -A "$W/sig")" ;;
  class-cond)  # --class-cond training, guided sampling of one class and of every class; the refusals
    R="$W.run" && rm -rf "$R" && mkdir -p "$R"
    "$BIN/casdm-train" "${TINY[@]}" --steps 2 --preset CasDM --class-cond --label-dropout 0.2 --out "$R/run" 2> "$R/train.err" ||
      fail "train --class-cond"
    grep -q "class-conditional: 10 classes, label dropout 0.2" "$R/train.err" || fail "train does not say it is conditional"
    "$BIN/casdm-sample" --checkpoint "$R/run" -n 5 --class all --guidance 2 --steps 3 --threads 1 --out "$R/all" || fail "sample all"
    "$BIN/casdm-sample" --checkpoint "$R/run" -n 2 --class 7 --sampler heun --steps 2 --threads 1 --out "$R/seven" || fail "sample 7"
    "$PY" -c "
import json, sys, torch, PIL.Image
d = torch.load(sys.argv[1] + '/samples.pt', weights_only=True)
assert d['labels'].tolist() == [0, 1, 2, 3, 4] and d['casdm.guidance'] == '2' and d['casdm.class'] == 'all', d
assert d['samples'].shape == (5, 1, 28, 28) and torch.isfinite(d['samples']).all()
desc = PIL.Image.open(sys.argv[1] + '/samples.png').text.get('Description')
assert desc.endswith(', class all, guidance 2'), desc
e = torch.load(sys.argv[2] + '/samples.pt', weights_only=True)
assert e['labels'].tolist() == [7, 7], e
c = torch.load(sys.argv[3], weights_only=True)
cfg = json.loads(c['casdm.config'])
assert c['casdm.format'] == 'casdm-checkpoint-2' and cfg['denoiser']['num_classes'] == 10 and cfg['trainer']['label_dropout'] == 0.2, cfg
" "$R/all" "$R/seven" "$R/run/checkpoints/ckpt-000000002.pt" || fail "conditional samples"
    "$BIN/casdm-train" --resume --steps 3 --threads 1 --out "$R/run" > /dev/null 2>&1 || fail "resume a conditional run"
    "$BIN/casdm-train" "${TINY[@]}" --steps 2 --out "$R/plain" > /dev/null 2>&1 || fail "train unconditional"
    refuse "--class 10: the model has 10 classes (0 to 9)" "$BIN/casdm-sample" --checkpoint "$R/run" --class 10 --out "$W/o"
    refuse "--class: expected an integer or 'all', got 'shirt'" "$BIN/casdm-sample" --checkpoint "$R/run" --class shirt --out "$W/o"
    refuse "is an unconditional model (trained without --class-cond)" "$BIN/casdm-sample" --checkpoint "$R/plain" --class 1 --out "$W/o"
    refuse "--guidance: needs --class" "$BIN/casdm-sample" --checkpoint "$R/run" --guidance 1 --out "$W/o"
    refuse "--class -1: the model has 10 classes (0 to 9)" "$BIN/casdm-sample" --checkpoint "$R/run" --class -1 --out "$W/o"
    # casdm-eval: the same words, before the scorer or the data set is read (neither exists here).
    refuse "--class -1: the model has 10 classes (0 to 9)" "$BIN/casdm-eval" --checkpoint "$R/run" --class -1 --scorer "$W/none/small_vgg.pt"
    refuse "is an unconditional model (trained without --class-cond)" "$BIN/casdm-eval" --checkpoint "$R/plain" --class all --scorer "$W/none/small_vgg.pt"
    refuse "--steps 5000: more than the model's T = 20" "$BIN/casdm-eval" --checkpoint "$R/plain" --steps 5000 --scorer "$W/none/small_vgg.pt"
    # A DDIM step count no integer stride of T makes: refused at once (sampling would refuse it only
    # after the reference statistics, or, in casdm-train, at the first sample grid).
    ddim15="--steps 15: DDIM takes the steps of T = 20 at an integer stride, which makes 10 or 20 but not 15"
    refuse "$ddim15" "$BIN/casdm-eval" --checkpoint "$R/plain" --steps 15 --scorer "$W/none/small_vgg.pt"
    refuse "$ddim15" "$BIN/casdm-sample" --checkpoint "$R/plain" --steps 15 --out "$W/o"
    refuse "$ddim15" "$BIN/casdm-ablation" --row "p=$R/plain" --steps 15 --scorer "$W/none/small_vgg.pt" --out "$W/o"
    refuse "--sample-${ddim15#--}" "$BIN/casdm-train" "${TINY[@]}" --steps 2 --sample-steps 15 --out "$W/o2"
    refuse "--label-dropout: only with --class-cond" "$BIN/casdm-train" "${TINY[@]}" --steps 2 --label-dropout 0.3 --out "$W/o"
    mkdir -p "$R/flat" && "$PY" -c "
import sys; from PIL import Image
for i in range(3): Image.new('L', (8, 8), 40 * i).save(f'{sys.argv[1]}/{i}.png')
" "$R/flat" || fail "making images"
    refuse "--class-cond: the data set images $R/flat has no class labels" "$BIN/casdm-train" "${TINY[@]}" --steps 2 --class-cond --data "$R/flat" --out "$W/o" ;;
  leaves-nothing)  # a refused run leaves the file system as it found it: no output folder, no lock, no probe file
    untouched() {  # command...: refused (exit 1), and no $W/o
      local out rc; out=$("$@" 2>&1); rc=$?; echo "$out"
      [ "$rc" -eq 1 ] || fail "exit status $rc: $*"
      [ ! -e "$W/o" ] || { find "$W/o"; fail "left $W/o behind: $*"; }
    }
    mkdir -p "$W/flat" "$W/cwd" "$W/kept" && "$PY" -c "
import sys; from PIL import Image
for i in range(3): Image.new('L', (8, 8), 40 * i).save(f'{sys.argv[1]}/{i}.png')
" "$W/flat" || fail "making images"
    untouched "$BIN/casdm-train" "${TINY[@]}" --steps 2 --preset Nope --out "$W/o/run"
    untouched "$BIN/casdm-train" "${TINY[@]}" --steps 2 --micro-batch 8 --out "$W/o/run"
    untouched "$BIN/casdm-train" "${TINY[@]}" --steps 2 --resume --out "$W/o/run"
    untouched "$BIN/casdm-train" "${TINY[@]}" --steps 2 --resume-from "$W/none.pt" --out "$W/o/run"
    untouched "$BIN/casdm-train" "${TINY[@]}" --steps 2 --class-cond --data "$W/flat" --out "$W/o/run"
    # A folder that was there stays, as it was: empty, without a lock file.
    "$BIN/casdm-train" "${TINY[@]}" --steps 2 --resume --out "$W/kept" && fail "resumed nothing"
    [ -d "$W/kept" ] && [ -z "$(ls -A "$W/kept")" ] || { ls -A "$W/kept"; fail "the existing folder changed"; }
    # An empty --out is refused, leaving no probe file in the current folder.
    out=$(cd "$W/cwd" && "$BIN/casdm-train" "${TINY[@]}" --steps 2 --out '' 2>&1); rc=$?; echo "$out"
    [ $rc -eq 1 ] && grep -qF "the output folder is named by an empty path" <<<"$out" || fail "--out ''"
    [ -z "$(ls -A "$W/cwd")" ] || { ls -A "$W/cwd"; fail "left files in the current folder"; } ;;
  fork)  # a run continued from another run's checkpoint in a new folder, and one whose loss log was deleted
    "$BIN/casdm-train" "${TINY[@]}" --steps 2 --out "$W/a" || fail "train a"
    out=$("$BIN/casdm-train" "${TINY[@]}" --steps 4 --resume-from "$W/a/checkpoints/ckpt-000000002.pt" --out "$W/b" 2>&1) ||
      { echo "$out"; fail "fork"; }
    grep -qF "no loss log in $W/b: losses.csv starts anew after step 2" <<<"$out" || { echo "$out"; fail "fork says nothing"; }
    [ "$(cut -d, -f1 "$W/b/losses.csv" | tr '\n' ' ')" = "step 3 4 " ] || { cat "$W/b/losses.csv"; fail "fork's log"; }
    [ -s "$W/b/checkpoints/ckpt-000000004.pt" ] && [ -s "$W/b/loss.png" ] || fail "fork's files"
    "$BIN/casdm-train" --resume --steps 5 --threads 1 --out "$W/b" > /dev/null 2>&1 || fail "resume of the fork"
    [ "$(cut -d, -f1 "$W/b/losses.csv" | tr '\n' ' ')" = "step 3 4 5 " ] || { cat "$W/b/losses.csv"; fail "the fork's log on resume"; }
    rm "$W/a/losses.csv"
    "$BIN/casdm-train" --resume --steps 3 --threads 1 --out "$W/a" || fail "resume without a log"
    [ "$(cut -d, -f1 "$W/a/losses.csv" | tr '\n' ' ')" = "step 3 " ] || { cat "$W/a/losses.csv"; fail "new log"; } ;;
  unknown-preset)
    refuse "unknown preset 'Nope'; choose one of: DDPM_Eps, DDPM_X0" "$BIN/casdm-train" "${TINY[@]}" --steps 4 --preset Nope --out "$W/o" ;;
  missing-data)
    refuse "data folder not found: /nonexistent" "$BIN/casdm-train" "${TINY[@]}" --steps 4 --data /nonexistent --out "$W/o" ;;
  wrong-magic)
    mkdir -p "$W/d" && printf '\x12\x34\x08\x03\x00\x00\x00\x01' > "$W/d/train-images-idx3-ubyte"
    cp $FMNIST/train-labels-idx1-ubyte.gz "$W/d/"
    refuse "IDX magic number" "$BIN/casdm-train" "${TINY[@]}" --steps 4 --data "$W/d" --out "$W/o" ;;
  truncated-data)
    mkdir -p "$W/d" && zcat $FMNIST/t10k-images-idx3-ubyte.gz | head -c 100000 > "$W/d/train-images-idx3-ubyte"
    cp $FMNIST/train-labels-idx1-ubyte.gz "$W/d/"
    refuse "(truncated)" "$BIN/casdm-train" "${TINY[@]}" --steps 4 --data "$W/d" --out "$W/o" ;;
  wrong-channels)
    "$PY" -c "
import sys; from PIL import Image
Image.new('L', (8, 8), 40).save(sys.argv[1] + '/a.png'); Image.new('RGB', (8, 8), (1, 2, 3)).save(sys.argv[1] + '/b.png')
" "$(mkdir -p "$W/d" && echo "$W/d")" || fail "making images"
    refuse "b.png has 3 channels, the data set has 1" "$BIN/casdm-train" "${TINY[@]}" --steps 4 --data "$W/d" --out "$W/o" ;;
  bad-device)
    refuse "--device gpu: not a device name (cpu, cuda, cuda:1, ...)" "$BIN/casdm-train" "${TINY[@]}" --steps 4 --device gpu --out "$W/o"
    refuse "--device cuda:7: this LibTorch sees" "$BIN/casdm-sample" --checkpoint "$W/none" --device cuda:7 ;;
  unwritable-out)
    refuse "output folder /proc/casdm is not writable" "$BIN/casdm-train" "${TINY[@]}" --steps 4 --out /proc/casdm ;;
  wrong-preset-option)
    refuse "--phi-model-channels: preset DDPM_Eps has no phi network" \
      "$BIN/casdm-train" "${TINY[@]}" --steps 4 --preset DDPM_Eps --phi-model-channels 8 --out "$W/o"
    refuse "--feature-size: preset CasDM has no feature loss" "$BIN/casdm-train" "${TINY[@]}" --steps 4 --feature-size 64 --out "$W/o"
    refuse "--eta: the ancestral sampler has no eta" "$BIN/casdm-sample" --checkpoint "$W/o" --sampler ancestral --eta 0.5
    refuse "--eta: the heun sampler has no eta" "$BIN/casdm-sample" --checkpoint "$W/o" --sampler heun --eta 0.5
    refuse "--exact-sigmas: the ddim sampler visits trained steps; the sigma-spaced samplers take exact sigmas (dpmpp2m, euler," \
      "$BIN/casdm-sample" --checkpoint "$W/o" --exact-sigmas
    refuse "--churn: the dpmpp2m sampler has no churn (euler and heun have)" "$BIN/casdm-sample" --checkpoint "$W/o" --sampler dpmpp2m --churn 5
    refuse "--churn-noise: the ddim sampler has no churn" "$BIN/casdm-sample" --checkpoint "$W/o" --churn-noise 1.1
    refuse "--churn-tmax 0.5 is below --churn-tmin 2" "$BIN/casdm-sample" --checkpoint "$W/o" --sampler heun --churn 5 --churn-tmin 2 --churn-tmax 0.5 ;;
  resume-refusals)  # a resumed run keeps its settings; a finished run does not restart silently
    "$BIN/casdm-train" "${TINY[@]}" --steps 4 --out "$W/run" || fail "train"
    before=$(md5sum "$W/run/checkpoints/"* "$W/run/losses.csv")
    touch "$W/.start"
    out=$("$BIN/casdm-train" --resume --steps 8 --lr 5e-4 --model-channels 16 --out "$W/run" 2>&1); rc=$?
    echo "$out"; [ $rc -eq 1 ] || fail "conflicting resume ran"
    grep -qF -- "--lr 5e-04 (the run has 0.001)" <<<"$out" || fail "message lacks --lr"
    grep -qF -- "--model-channels 16 (the run has 8)" <<<"$out" || fail "message lacks --model-channels"
    out=$("$BIN/casdm-train" --resume --steps 8 --precision bf16 --out "$W/run" 2>&1); rc=$?
    echo "$out"; [ $rc -eq 1 ] && grep -qF -- "--precision bf16 (the run has fp32)" <<<"$out" || fail "precision changed on resume"
    out=$("$BIN/casdm-train" "${TINY[@]}" --steps 4 --out "$W/run" 2>&1); rc=$?
    echo "$out"; [ $rc -eq 1 ] && grep -qF "/checkpoints holds checkpoints of an earlier run: resume it, or choose another folder" <<<"$out" && grep -qF "casdm-train: --out: " <<<"$out" || fail "overwrote a run"
    out=$("$BIN/casdm-train" --resume --steps 4 --out "$W/run" 2>&1); rc=$?
    echo "$out"; [ $rc -eq 1 ] && grep -qF "the run is at step 4 already" <<<"$out" || fail "finished run"
    [ "$before" = "$(md5sum "$W/run/checkpoints/"* "$W/run/losses.csv")" ] || fail "a refused resume changed the run"
    out=$("$BIN/casdm-train" --resume --out "$W/empty" 2>&1); rc=$?
    echo "$out"; [ $rc -eq 1 ] && grep -qF -- "--resume: no checkpoint in" <<<"$out" || fail "resume of nothing" ;;
  bad-checkpoint)  # truncated, foreign (Python's torch.save of another dict), a model file, absent
    "$BIN/casdm-train" "${TINY[@]}" --steps 4 --out "$W/run" || fail "train"
    head -c 20000 "$W/run/checkpoints/ckpt-000000004.pt" > "$W/cut.pt"
    "$PY" -c "import sys, torch; torch.save({'weight': torch.ones(3), 'bias': torch.zeros(2)}, sys.argv[1])" "$W/foreign.pt" || fail "torch.save"
    rm -rf "$W/run"; touch "$W/.start"
    refuse "cut.pt is not a readable tensor file (corrupt or truncated?)" "$BIN/casdm-sample" --checkpoint "$W/cut.pt" --out "$W/s"
    refuse "foreign.pt is not a casdm checkpoint" "$BIN/casdm-sample" --checkpoint "$W/foreign.pt" --out "$W/s"
    refuse "foreign.pt is not a casdm checkpoint" "$BIN/casdm-train" --resume-from "$W/foreign.pt" --out "$W/o"
    refuse "cut.pt is not a readable tensor file" "$BIN/casdm-train" --resume-from "$W/cut.pt" --out "$W/o"
    refuse "absent.pt (no such file)" "$BIN/casdm-sample" --checkpoint "$W/absent.pt" --out "$W/s" ;;
  upgrade)  # format 1 is refused naming casdm-upgrade, which converts a run's folder and a model file in place
    F1="$HERE/../tests/data/format1"
    mkdir -p "$W/run/checkpoints" && cp "$F1/CasDM.pt" "$W/run/checkpoints/ckpt-000000002.pt" && cp "$F1/CasDM.model.pt" "$W/model.pt"
    "$PY" -c "import sys, torch; torch.save({'x': torch.ones(2)}, sys.argv[1])" "$W/run/other.pt" || fail "torch.save"
    out=$("$BIN/casdm-train" --resume --steps 3 --threads 1 --out "$W/run" 2>&1); rc=$?
    echo "$out"
    [ $rc -eq 1 ] && grep -qF "$W/run/checkpoints holds checkpoints of format 1 (written before 2026-12-07), which this build no longer reads; convert them once, in place: casdm-upgrade $W/run/checkpoints" <<<"$out" ||
      fail "resume of a format-1 folder"
    [ -s "$W/run/checkpoints/ckpt-000000002.pt" ] && [ ! -e "$W/run/checkpoints/ckpt-000000002.pt.damaged" ] || fail "moved aside"
    for cmd in "casdm-sample --checkpoint $W/model.pt" "casdm-train --resume-from $W/run/checkpoints/ckpt-000000002.pt --out $W/o"; do
      out=$("$BIN"/$cmd --threads 1 2>&1); rc=$?
      echo "$out"
      [ $rc -eq 1 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -qF "of format 1 (written before 2026-12-07), which this build no longer reads; convert it once, in place: casdm-upgrade $W/" <<<"$out" ||
        fail "$cmd"
    done
    "$BIN/casdm-upgrade" "$W/run" "$W/model.pt" > "$W/up.out" || { cat "$W/up.out"; fail "casdm-upgrade"; }
    cat "$W/up.out"
    for line in "ckpt-000000002.pt: converted to casdm-checkpoint-2 (step 2, cosine | cascaded(unet <- x0star, unet) | eps:1 + x0:1 + mu:1)" \
                "left as it is: $W/run/other.pt is not a readable tensor file" "model.pt: converted to casdm-denoiser-2 (cosine | cascaded(unet <- x0star, unet))"; do
      grep -qF "$line" "$W/up.out" || fail "casdm-upgrade did not say: $line"
    done
    [ -z "$(find "$W" -name '*.upgrading')" ] || fail "left a file beside"
    "$BIN/casdm-upgrade" "$W/run/checkpoints/ckpt-000000002.pt" | grep -qF "ckpt-000000002.pt: already format 2" || fail "twice"
    "$BIN/casdm-sample" --checkpoint "$W/run" -n 2 --steps 2 --threads 1 --out "$W/s1" || fail "sample from the converted checkpoint"
    "$BIN/casdm-sample" --checkpoint "$W/model.pt" -n 2 --steps 2 --threads 1 --out "$W/s2" || fail "sample from the converted model file"
    out=$("$BIN/casdm-upgrade" "$W/run/other.pt" "$W/absent.pt" 2>&1); rc=$?
    echo "$out"
    [ $rc -eq 1 ] && grep -qF "casdm-upgrade: $W/run/other.pt is not a readable tensor file" <<<"$out" &&
      grep -qF "absent.pt (no such file)" <<<"$out" && [ "$(wc -l <<<"$out")" -eq 2 ] || fail "refusals" ;;
  signal)  # SIGTERM mid-run: the step finishes, a checkpoint is written, exit 143; the resume equals a straight run
    args=("${TINY[@]}" --dropout 0.1)
    "$BIN/casdm-train" "${args[@]}" --steps 100000 --out "$W/split" 2> "$W/split.err" & pid=$!
    for _ in $(seq 600); do grep -q "^step 3/" "$W/split.err" && break; sleep 0.1; done
    kill -TERM $pid; wait $pid; rc=$?
    cat "$W/split.err"
    [ $rc -eq 143 ] || fail "exit status $rc after SIGTERM, expected 143"
    n=$(sed -n 's/.*stopped by SIGTERM after step \([0-9]*\); wrote .*/\1/p' "$W/split.err")
    [ -n "$n" ] && [ "$n" -ge 3 ] || fail "no stop message"
    [ -s "$W/split/checkpoints/$(printf 'ckpt-%09d.pt' "$n")" ] || fail "no checkpoint at step $n"
    "$BIN/casdm-train" --resume --steps $((n + 2)) --threads 1 --samples 4 --sample-steps 2 --out "$W/split" || fail "resume"
    "$BIN/casdm-train" "${args[@]}" --steps $((n + 2)) --out "$W/straight" || fail "straight run"
    "$PY" "$HERE/../tests/reference/same_checkpoint.py" "$W/straight/checkpoints/$(printf 'ckpt-%09d.pt' $((n + 2)))" \
      "$W/split/checkpoints/$(printf 'ckpt-%09d.pt' $((n + 2)))" || fail "the resumed run differs"
    cmp "$W/straight/losses.csv" "$W/split/losses.csv" || fail "loss logs differ"
    # A second signal ends the process at once, saving nothing.
    "$BIN/casdm-train" "${TINY[@]}" --model-channels 32 --batch 32 --steps 100000 --out "$W/twice" 2> "$W/twice.err" & pid=$!
    for _ in $(seq 600); do grep -q "^step 1/" "$W/twice.err" && break; sleep 0.1; done
    kill -INT $pid; sleep 0.3; kill -INT $pid; wait $pid; rc=$?  # apart: two pending SIGINTs merge into one
    cat "$W/twice.err"
    [ $rc -eq 130 ] || fail "exit status $rc after two SIGINTs, expected 130"
    grep -qF "second signal: exiting at once" "$W/twice.err" || fail "no second-signal message" ;;
  nonfinite)  # a diverging run stops non-zero naming the step and term; no checkpoint holds non-finite values
    out=$("$BIN/casdm-train" "${TINY[@]}" --lr 1e3 --steps 200 --checkpoint-every 1 --keep 3 --out "$W/run" 2>&1); rc=$?
    echo "$out" | tail -8
    [ $rc -eq 1 ] || fail "exit status $rc, expected 1"
    grep -q "^step [0-9]* skipped: loss term '[a-z0-9]*' is nan" <<<"$out" || fail "no skip line"
    grep -q "^casdm-train: step [0-9]*: .* 3 step(s) in a row were not finite, so training stops" <<<"$out" || fail "no stop message"
    ls "$W/run/checkpoints/"ckpt-*.pt > /dev/null || fail "no checkpoint before the divergence"
    "$PY" -c "
import sys, torch
for p in sys.argv[1:]:
    d = torch.load(p, weights_only=True)
    bad = [k for k, v in d.items() if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
    assert not bad, (p, bad[:3])
" "$W/run/checkpoints/"ckpt-*.pt || fail "a checkpoint holds non-finite values"
    "$BIN/casdm-train" --resume --steps 200 --threads 1 --out "$W/run" > "$W/again.log" 2>&1; rc=$?
    [ $rc -eq 1 ] && grep -q "so training stops" "$W/again.log" || fail "the resumed diverging run did not stop ($rc)" ;;
  corrupt-fallback)  # a flipped bit in the newest checkpoint: the resume says so and continues from the one before
    "$BIN/casdm-train" "${TINY[@]}" --steps 4 --checkpoint-every 2 --out "$W/run" || fail "train"
    "$PY" -c "
import sys, torch
p = sys.argv[1]
t = torch.load(p, weights_only=True)['model.theta.out_conv.weight'].contiguous().numpy().tobytes()
b = bytearray(open(p, 'rb').read()); i = b.find(t); assert i >= 0
b[i + len(t) // 2] ^= 0x10; open(p, 'wb').write(bytes(b))
" "$W/run/checkpoints/ckpt-000000004.pt" || fail "flipping a bit"
    out=$("$BIN/casdm-train" --resume --steps 6 --threads 1 --samples 4 --sample-steps 2 --out "$W/run" 2>&1); rc=$?
    echo "$out"; [ $rc -eq 0 ] || fail "resume failed"
    grep -qF "ckpt-000000004.pt is corrupt: tensor 'model.theta.out_conv.weight' fails its checksum" <<<"$out" || fail "no corruption message"
    grep -qF "resuming from ckpt-000000002.pt, the newest valid checkpoint" <<<"$out" || fail "no fallback message"
    "$BIN/casdm-train" "${TINY[@]}" --steps 6 --out "$W/straight" || fail "straight run"
    "$PY" "$HERE/../tests/reference/same_checkpoint.py" "$W/straight/checkpoints/ckpt-000000006.pt" \
      "$W/run/checkpoints/ckpt-000000006.pt" || fail "the run continued from the fallback differs"
    rm -rf "$W/run" "$W/straight"; mkdir -p "$W/dir.pt"; touch "$W/.start"
    refuse "dir.pt is a folder, not a tensor file" "$BIN/casdm-train" --resume-from "$W/dir.pt" --out "$W/o" ;;
  two-writers)  # a second run on a folder in use is refused naming the first one's pid
    "$BIN/casdm-train" "${TINY[@]}" --steps 100000 --out "$W/run" 2> "$W/first.err" & pid=$!
    for _ in $(seq 600); do grep -q "^step 1/" "$W/first.err" && break; sleep 0.1; done
    out=$("$BIN/casdm-train" --resume --steps 100001 --out "$W/run" 2>&1); rc=$?
    kill -TERM $pid; wait $pid
    echo "$out"; [ $rc -eq 1 ] && grep -qF "$W/run is in use by process $pid (one run per output folder)" <<<"$out" || fail "second writer"
    "$BIN/casdm-train" --resume --steps $(( $(ls "$W/run/checkpoints" | sed -n 's/ckpt-0*\([0-9]*\).pt/\1/p' | tail -1) + 1 )) \
      --threads 1 --out "$W/run" > /dev/null 2>&1 || fail "the folder stayed locked after its run ended" ;;
  disk-full)  # writes that fail (a file-size limit stands in for a full disk) name the reason and cost no good file
    "$BIN/casdm-train" "${TINY[@]}" --steps 4 --out "$W/run" || fail "train"
    before=$(md5sum "$W/run/checkpoints/"* "$W/run/run.json")
    out=$( (trap '' XFSZ; ulimit -f 100; exec "$BIN/casdm-train" --resume --steps 6 --threads 1 --out "$W/run") 2>&1); rc=$?
    echo "$out" | tail -3
    [ $rc -eq 1 ] || fail "exit status $rc, expected 1"
    grep -q "^casdm-train: cannot write $W/run/checkpoints/ckpt-000000006.pt: File too large$" <<<"$out" || fail "no reason given"
    [ "$before" = "$(md5sum "$W/run/checkpoints/"* "$W/run/run.json")" ] || fail "a good file changed"
    ! find "$W/run" -name '*.tmp*' | grep -q . || fail "temporary files left"
    "$BIN/casdm-train" --resume --steps 6 --threads 1 --out "$W/run" > /dev/null 2>&1 || fail "resume after space came back"
    [ "$(wc -l < "$W/run/losses.csv")" -eq 7 ] || fail "losses.csv after the failed resume"
    # A temporary file of a process killed mid-write is removed by the next run.
    touch "$W/run/checkpoints/.ckpt-000000008.pt.tmp.999999999"
    "$BIN/casdm-train" --resume --steps 7 --threads 1 --out "$W/run" 2> "$W/orphan.err" > /dev/null || fail "run"
    grep -qF "removed $W/run/checkpoints/.ckpt-000000008.pt.tmp.999999999" "$W/orphan.err" || fail "orphan not reported"
    [ ! -e "$W/run/checkpoints/.ckpt-000000008.pt.tmp.999999999" ] || fail "orphan left" ;;
  bad-options)  # every option range-checked before anything runs: one line, no backtrace, nothing written
    check() {  # check STATUS "message" args...
      local want=$1 expect=$2; shift 2
      local out rc
      local prog=${PROG:-casdm-train}  # PROG=casdm-sample check ...: another program's options
      out=$("$BIN/$prog" "$@" --out "$W/o" 2>&1); rc=$?
      echo "$out"
      [ "$rc" -eq "$want" ] || fail "$prog $*: exit status $rc, expected $want"
      grep -qF -- "$expect" <<<"$out" || fail "$prog $*: message lacks: $expect"
      [ "$(grep -c "^$prog:" <<<"$out")" -eq 1 ] || fail "$prog $*: not one error line"
      ! grep -qE "Exception raised from|frame #|terminate called|[0-9]{40}" <<<"$out" || fail "$*: backtrace or long number"
      ! find "$W" -name 'ckpt-*' -o -name 'losses.csv' | grep -q . || fail "$*: files written"
    }
    check 2 "--norm-groups: must be an integer in [1, 1024], got '0'" --norm-groups 0
    check 2 "--model-channels: must be an integer in [1, 16384], got '0'" --model-channels 0
    check 2 "--dropout: must be a number in [0, 1), got '1.5'" --dropout 1.5
    check 2 "--image-size: must be an integer in [0, 65536], got '-5'" --image-size -5
    check 2 "--image-size: must be an integer in [0, 65536], got '100000'" --image-size 100000
    check 2 "--sample-steps: must be an integer >= 1, got '0'" --sample-steps 0
    check 2 "--lr: must be a number in (0, 3.4028234663852886e+38], got '-1'" --lr -1
    check 2 "--lr: must be a number in (0, 3.4028234663852886e+38], got 'nan'" --lr nan
    check 2 "--lr: must be a number in (0, 3.4028234663852886e+38], got '1e300'" --lr 1e300
    check 2 "--grad-clip: must be a number in [0, 3.4028234663852886e+38], got '1e300'" --grad-clip 1e300
    check 2 "--weight-decay: must be a number in [0, 3.4028234663852886e+38], got '1e39'" --weight-decay 1e39
    check 2 "--weight-decay: must be a number in [0, 3.4028234663852886e+38], got '-1'" --weight-decay -1
    check 2 "--steps: must be an integer >= 1, got 'abc'" --steps abc
    check 2 "--ema: must be a number in [0, 1), got '1'" --ema 0.9 1
    check 2 "--channel-mult: must be an integer in [1, 64], got '0'" --channel-mult 1 0
    check 1 "--sample-steps 5000 exceeds --diffusion-steps 20" "${TINY[@]}" --sample-steps 5000
    check 1 "and the activations of 1000000000 images of 28x28" "${TINY[@]}" --batch 1000000000
    check 1 "a training step needs about" "${TINY[@]}" --model-channels 16384 --norm-groups 8
    check 1 "bringing the 60000 images of" "${TINY[@]}" --image-size 30000 --fit resize
    check 1 "UNet: image_size 30 is not divisible by 2^(levels-1) = 4" "${TINY[@]}" --image-size 30
    check 2 "--precision: fp64 not in {fp32,bf16,fp16}" --precision fp64
    check 1 "--precision fp16: float16 autocast needs a CUDA device (LibTorch's CPU autocast runs bfloat16 only; on cpu use bf16)" "${TINY[@]}" --precision fp16
    check 1 "--batch 5 does not divide among 2 ranks" "${TINY[@]}" --batch 5 --nproc-per-node 2
    check 1 "ema_rates: 0.5 is given twice (one EMA copy per rate)" "${TINY[@]}" --ema 0.5 0.9 0.5
    check 2 "--nproc-per-node: must be an integer in [1, 1024], got '0'" --nproc-per-node 0
    # The other programs' counts and seeds: the same words (CLI11's own checks printed 1.8e308 in full).
    PROG=casdm-sample check 2 "--n: must be an integer >= 1, got '0'" --checkpoint "$W/none" -n 0
    PROG=casdm-sample check 2 "--batch: must be an integer >= 1, got '0'" --checkpoint "$W/none" --batch 0
    PROG=casdm-sample check 2 "--columns: must be an integer >= 1, got '0'" --checkpoint "$W/none" --columns 0
    PROG=casdm-sample check 2 "--seed: must be an integer >= 0, got '-5'" --checkpoint "$W/none" --seed -5
    PROG=casdm-eval check 2 "--n: must be an integer in [2, 1099511627776], got '1'" --checkpoint "$W/none" --scorer x -n 1
    PROG=casdm-eval check 2 "--splits: must be an integer >= 1, got '0'" --checkpoint "$W/none" --scorer x --splits 0
    PROG=casdm-eval check 2 "--bootstrap: must be an integer >= 0, got '-1'" --checkpoint "$W/none" --scorer x --bootstrap -1
    PROG=casdm-eval check 2 "--ref-n: must be an integer >= 0, got '-3'" --checkpoint "$W/none" --scorer x --ref-n -3
    PROG=casdm-eval check 2 "--eta: must be a number in [0, 1], got '-2'" --checkpoint "$W/none" --scorer x --eta -2
    PROG=casdm-eval check 2 "--eta: must be a number in [0, 1], got '1e30'" --checkpoint "$W/none" --scorer x --eta 1e30
    PROG=casdm-sample check 2 "--eta: must be a number in [0, 1], got '1e25'" --checkpoint "$W/none" --eta 1e25
    PROG=casdm-eval check 2 "--steps: must be an integer >= 0, got '-1'" --checkpoint "$W/none" --scorer x --steps -1
    PROG=casdm-sample check 2 "--steps: must be an integer >= 0, got '-1'" --checkpoint "$W/none" --steps -1
    PROG=casdm-ablation check 2 "--grid: must be an integer >= 1, got '0'" --grid 0
    long=$(printf '9%.0s' $(seq 400))  # echoed as given, shortened: never as the value it overflowed to
    PROG=casdm-ablation check 2 "--steps: must be an integer >= 0, got '99999999999999999999…' (400 characters)" --steps "$long"
    PROG=casdm-train check 2 "--lr: must be a number in (0, 3.4028234663852886e+38], got '99999999999999999999…' (400 characters)" --lr "$long"
    PROG=casdm-ablation check 2 "--seed: must be an integer >= 0, got '-1'" --seed -1
    PROG=casdm-ablation check 2 "--ref-n: must be an integer >= 0, got '-1'" --ref-n -1
    PROG=casdm-metric check 2 "--steps: must be an integer >= 1, got '0'" --steps 0
    PROG=casdm-metric check 2 "--image-size: must be an integer in [4, 4096], got '2'" --image-size 2 ;;
  lpips)  # an LPIPS preset end to end on random VGG16/LPIPS weights; without weights: refused
    "$PY" "$HERE/../tests/reference/lpips_ref.py" "$W" > /dev/null || fail "making weights"
    "$BIN/casdm-train" "${TINY[@]}" --steps 2 --preset CasDM_LPIPS --feature-weights "$W" --feature-size 32 \
      --out "$W/run" || fail "train"
    head -1 "$W/run/losses.csv" | grep -qx "step,total,eps,x0,mu,lpips" || fail "losses.csv header"
    "$BIN/casdm-sample" --checkpoint "$W/run" -n 2 --steps 2 --threads 1 --out "$W/s" || fail "sample"
    rm -rf "$W/run" "$W/s"; touch "$W/.start"
    refuse "casdm-train: --feature-weights: the LPIPS loss needs the folder of vgg16_features.pt" \
      "$BIN/casdm-train" "${TINY[@]}" --steps 2 --preset Dual_LPIPS --out "$W/o" ;;
  metric)  # casdm-metric trains the SmallVGG, casdm-train uses it; unlabelled data and bad widths refused
    "$BIN/casdm-metric" --steps 20 --batch 16 --widths 8,16 --image-size 16 --threads 1 --out "$W/m" > "$W/m.log" ||
      { cat "$W/m.log"; fail "casdm-metric"; }
    grep -q "test accuracy" "$W/m.log" || fail "no accuracy reported"
    "$PY" -c "
import json, sys, torch
j = json.load(open(sys.argv[1] + '/metric.json'))
assert j['steps'] == 20 and j['widths'] == [8, 16] and j['classes'] == 10 and 0 <= j['test_accuracy'] <= 1, j
w = torch.load(sys.argv[1] + '/small_vgg.pt', weights_only=True)
assert w['casdm.small_vgg.widths'] == '8,16' and w['features.0.weight'].shape == (8, 3, 3, 3), list(w)
assert abs(float(w['casdm.test_accuracy']) - j['test_accuracy']) < 1e-9
" "$W/m" || fail "metric files"
    "$BIN/casdm-train" "${TINY[@]}" --steps 2 --preset CasDM_SmallVGG --feature-weights "$W/m" --feature-size 16 \
      --out "$W/run" || fail "train with the metric"
    head -1 "$W/run/losses.csv" | grep -qx "step,total,eps,x0,mu,small_vgg" || fail "losses.csv header"
    # Trained parameters apart from the frozen metric network's (two 3×3 convolutions a stage, the fc).
    "$PY" -c "
import json, sys
j = json.load(open(sys.argv[1]))
assert j['frozen_parameters'] == (3*8*9 + 8) + (8*8*9 + 8) + (8*16*9 + 16) + (16*16*9 + 16) + (16*10 + 10), j['frozen_parameters']
assert j['parameters'] > 0, j
" "$W/run/run.json" || fail "parameter counts"
    # The weights folder moved: a resume given the new place, and a loss weight changed, goes on (and says so).
    mv "$W/m" "$W/moved"
    out=$("$BIN/casdm-train" --resume --steps 3 --threads 1 --out "$W/run" 2>&1); rc=$?
    echo "$out"; [ $rc -eq 1 ] && grep -qF "SmallVGG weights file not found: $W/m/small_vgg.pt" <<<"$out" || fail "resume from a folder that moved"
    out=$("$BIN/casdm-train" --resume --steps 3 --threads 1 --loss-weight bogus=1 --out "$W/run" 2>&1); rc=$?
    echo "$out"; [ $rc -eq 1 ] && grep -qF "preset CasDM_SmallVGG has no loss term 'bogus' (its terms: eps, x0, mu, small_vgg)" <<<"$out" ||
      fail "unknown --loss-weight"
    "$BIN/casdm-train" --resume --steps 3 --threads 1 --feature-weights "$W/moved" --loss-weight x0=0.5 --out "$W/run" \
      2> "$W/resume.err" || { cat "$W/resume.err"; fail "resume with the weights moved"; }
    grep -qF "changed on resume (checkpoint vs this run): loss_weight.x0: '1' vs '0.5'" "$W/resume.err" || fail "no change reported"
    grep -qF "changed on resume (checkpoint vs this run): feature_weights: '$W/m' vs '$W/moved'" "$W/resume.err" || fail "no move reported"
    "$PY" -c "
import json, sys, torch
j = json.load(open(sys.argv[1] + '/run.json'))
assert j['loss_weights'] == {'eps': 1, 'x0': 0.5, 'mu': 1, 'small_vgg': 0.1}, j['loss_weights']
assert j['identity'] == 'cosine | cascaded(unet <- x0star, unet) | eps:1 + x0:1 + mu:1 + small_vgg(32):1/10', j['identity']
assert any('loss_weight.x0' in c for c in j['changed_on_resume']), j['changed_on_resume']
c = torch.load(sys.argv[1] + '/checkpoints/ckpt-000000003.pt', weights_only=True)
cfg = json.loads(c['casdm.config'])
assert cfg['objective']['loss_weights']['x0'] == 0.5 and cfg['objective']['feature_weights'] == sys.argv[2], cfg['objective']
assert cfg['run']['args.loss-weight'] == 'x0=0.5', cfg['run']
" "$W/run" "$W/moved" || fail "the changed objective is not recorded"
    mv "$W/moved" "$W/m"
    rm -rf "$W/run"; touch "$W/.start"
    mkdir -p "$W/pngs" && "$PY" -c "
import sys
from PIL import Image
for i in range(2): Image.new('L', (8, 8), 40 * i).save(f'{sys.argv[1]}/{i}.png')" "$W/pngs" || fail "making images"
    refuse "has no labels; casdm-metric trains a classifier" "$BIN/casdm-metric" --data "$W/pngs" --out "$W/o"
    refuse "--widths: every stage needs at least one channel" "$BIN/casdm-metric" --widths 8,0 --out "$W/o"
    refuse "SmallVGG weights file not found: $W/pngs/small_vgg.pt" \
      "$BIN/casdm-train" "${TINY[@]}" --steps 2 --preset CasDM_SmallVGG --feature-weights "$W/pngs" --out "$W/o" ;;
  eval)  # casdm-eval on a tiny run with a tiny SmallVGG: JSON, the cached reference reused, refusals
    R="$W.run" && rm -rf "$R" && mkdir -p "$R"
    "$BIN/casdm-metric" --steps 5 --batch 8 --widths 4,8 --image-size 16 --threads 1 --out "$R/m" > /dev/null ||
      fail "casdm-metric"
    "$BIN/casdm-train" "${TINY[@]}" --steps 2 --image-size 16 --fit resize --out "$R/run" > /dev/null 2>&1 || fail "train"
    ev=("$BIN/casdm-eval" --checkpoint "$R/run" --scorer "$R/m/small_vgg.pt" -n 20 --steps 2 --batch 10 --ref-n 200
        --threads 1)
    "${ev[@]}" --out "$W/e1.json" > /dev/null || fail "first evaluation"
    "${ev[@]}" --out "$W/e2.json" --bootstrap 20 > /dev/null || fail "second evaluation"
    "${ev[@]}" --out "$W/e3.json" --steps 0 -n 2 --splits 1 > /dev/null || fail "evaluation at DDIM's default steps"
    "${ev[@]}" --out "$W/e4.json" --sampler dpmpp2m > /dev/null || fail "evaluation with DPM-Solver++(2M)"
    "${ev[@]}" --out "$W/e5.json" --sampler heun --steps 0 -n 2 --splits 1 > /dev/null || fail "evaluation at Heun's default steps"
    "${ev[@]}" --out "$W/e6.json" --sampler euler --exact-sigmas -n 2 --splits 1 --churn 3 --churn-tmax 20 > /dev/null || fail "evaluation at exact sigmas"
    [ -s "$R/m/reference-stats.pt" ] || fail "no cached reference statistics"
    "$PY" -c "
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
assert a['reference_cached'] is False and b['reference_cached'] is True, (a, b)
assert a['fd_domain'] == b['fd_domain'] and a['fd_domain'] > 0, (a['fd_domain'], b['fd_domain'])
assert a['n'] == 20 and a['reference_images'] == 200 and a['data_fit'] == 'resize' and a['step'] == 2, a
assert 1 <= a['domain_score']['mean'] <= 10 and a['weights'].startswith('ema'), a
assert 'fd_domain_std' not in a and b['fd_domain_std'] > 0 and b['bootstrap'] == 20, b
# The KID: 100 subset pairs of all 20 samples and 20 of the 200 reference features, seeded.
k = a['kid_domain']
assert k['subsets'] == 100 and k['subset_size'] == 20 and k['std'] > 0 and k == b['kid_domain'], (a, b)
assert a['sampler'] == {'kind': 'ddim', 'steps': 2, 'eta': 0.0}, a['sampler']
assert json.load(open(sys.argv[3]))['sampler']['steps'] == 20  # --steps 0: DDIM's 100, at most T
d, e = (json.load(open(f)) for f in sys.argv[4:6])
assert d['sampler'] == {'kind': 'dpmpp2m', 'steps': 2, 'sigmas': 'snapped'} and d['fd_domain'] != a['fd_domain'], (d, a)  # another sampler ran
assert e['sampler'] == {'kind': 'heun', 'steps': 10, 'sigmas': 'snapped'}, e['sampler']  # Heun's default, 10
assert json.load(open(sys.argv[6]))['sampler'] == {'kind': 'euler', 'steps': 2, 'sigmas': 'exact',
                                                  'churn': {'amount': 3.0, 't_min': 0.0, 't_max': 20.0, 'noise': 1.0}}
" "$W/e1.json" "$W/e2.json" "$W/e3.json" "$W/e4.json" "$W/e5.json" "$W/e6.json" || fail "evaluation JSON"
    refuse "--eta: the heun sampler has no eta (ddim and the stochastic samplers have)" "${ev[@]}" --sampler heun --eta 0.5
    refuse "expected a file named inception_fid.pt or small_vgg.pt" "${ev[@]}" --scorer "$R/m/metric.json"
    refuse "--splits 30 is more than -n 20" "${ev[@]}" --splits 30
    refuse "--kid-subset-size 30 is more than -n 20" "${ev[@]}" --kid-subset-size 30
    refuse "--kid-subset-size: 0 (the default) or at least 2 vectors" "${ev[@]}" --kid-subset-size 1
    refuse "casdm-eval: KID: a subset of 300 is more than the 200 reference vectors" "${ev[@]}" -n 400 --kid-subset-size 300
    "${ev[@]}" --out "$W/e7.json" --kid-subsets 0 -n 2 --splits 1 > /dev/null || fail "evaluation without KID"
    "$PY" -c "import json, sys; assert 'kid_domain' not in json.load(open(sys.argv[1]))" "$W/e7.json" || fail "--kid-subsets 0"
    refuse "SmallVGG weights file not found" "${ev[@]}" --scorer "$R/absent/small_vgg.pt"
    refuse "cannot open $R/none.pt (no such file)" "${ev[@]}" --checkpoint "$R/none.pt"
    refuse "casdm-eval: --n: 1000000000 samples of 1x16x16 need 1.02e+03 GB of memory as float32" "${ev[@]}" -n 1000000000 --out "$W/big.json"
    refuse "casdm-eval: --out $W: a folder; give the name of the JSON file to write" "${ev[@]}" --out "$W"
    # --samples: images made by another program, as improved-diffusion's .npz (arr_0, uint8 NHWC) and as
    # the same images in a folder of PNGs: the same scores, against the reference cached above.
    "$PY" -c "
import os, sys
import numpy as np
from PIL import Image
x = np.random.default_rng(0).integers(0, 256, size=(12, 16, 16, 1), dtype=np.uint8)
np.savez(sys.argv[1] + '/s.npz', x)
np.savez(sys.argv[1] + '/rgb.npz', np.repeat(x, 3, axis=3))
os.makedirs(sys.argv[1] + '/folder', exist_ok=True)
for i, im in enumerate(x):
    Image.fromarray(im[:, :, 0]).save(f'{sys.argv[1]}/folder/{i:03d}.png')
open(sys.argv[1] + '/bad.npz', 'w').write('not a zip')
" "$R" || fail "writing the samples"
    sv=("$BIN/casdm-eval" --scorer "$R/m/small_vgg.pt" --ref-n 200 --batch 5 --threads 1)
    "${sv[@]}" --samples "$R/s.npz" --out "$W/s1.json" > /dev/null || fail "--samples an .npz"
    "${sv[@]}" --samples "$R/folder" --out "$W/s2.json" --splits 3 > /dev/null || fail "--samples a folder"
    "$PY" -c "
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
assert a['samples'].endswith('s.npz (arr_0 of an .npz, uint8 NHWC)') and b['samples'].endswith('(a folder of images)'), (a, b)
assert a['n'] == 12 and a['side'] == 16 and a['channels'] == 1 and a['reference_images'] == 200, a
assert a['reference_cached'] is True and a['data_fit'] == 'resize', a  # the statistics the checkpoint's evaluations made
assert a['fd_domain'] == b['fd_domain'] > 0 and a['kid_domain'] == b['kid_domain'] and a['kid_domain']['subset_size'] == 12, (a, b)
assert b['domain_score']['splits'] == 3 and 'checkpoint' not in a and 'sampler' not in a, b
" "$W/s1.json" "$W/s2.json" || fail "--samples JSON"
    refuse "casdm-eval: --steps: draws from --checkpoint; --samples scores images made elsewhere" "${sv[@]}" --samples "$R/s.npz" --steps 5
    refuse "casdm-eval: --n: draws from --checkpoint" "${sv[@]}" --samples "$R/s.npz" -n 5
    refuse "casdm-eval: one of --checkpoint (draw samples from it) and --samples (score images made elsewhere)" "${sv[@]}"
    refuse "casdm-eval: one of --checkpoint" "${sv[@]}" --samples "$R/s.npz" --checkpoint "$R/run"
    refuse "has 1-channel images, the samples are 3-channel ones" "${sv[@]}" --samples "$R/rgb.npz"
    refuse "bad.npz: not a readable .npz (a zip archive of .npy files)" "${sv[@]}" --samples "$R/bad.npz"
    refuse "s.npz (arr_0 of an .npz, uint8 NHWC): 12 images for 20 Inception Score splits" "${sv[@]}" --samples "$R/s.npz" --splits 20
    refuse "KID: a subset of 13 is more than the 12 samples" "${sv[@]}" --samples "$R/s.npz" --kid-subset-size 13
    # --nll: the bits/dim of the test split's first images under the checkpoint's model (T = 20 terms).
    nl=("$BIN/casdm-eval" --checkpoint "$R/run" --nll --nll-n 6 --batch 4 --threads 1)
    "${nl[@]}" --out "$W/n1.json" > /dev/null 2> "$W/nll.err" || fail "--nll"
    "${nl[@]}" --nll-variance small --out "$W/n2.json" > /dev/null 2>&1 || fail "--nll small"
    [ "$(grep -c "^nll: [46]/6 images" "$W/nll.err")" = 2 ] || fail "--nll progress: $(cat "$W/nll.err")"
    "$PY" -c "
import json, math, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
assert a['n'] == 6 and a['split'] == 'test' and a['variance'] == 'large' and b['variance'] == 'small' and a['data_fit'] == 'resize', a
assert len(a['vb_bpd_by_step']) == 20 and a['decoder_bpd'] == a['vb_bpd_by_step'][0] and a['bits_per_dim_stderr'] > 0, a
assert 0 < a['bits_per_dim'] < 100 and a['bits_per_dim'] != b['bits_per_dim'], (a, b)
assert abs(sum(a['vb_bpd_by_step']) + a['prior_bpd'] - a['bits_per_dim']) < 1e-9 * a['bits_per_dim'], a
" "$W/n1.json" "$W/n2.json" || fail "--nll JSON"
    refuse "casdm-eval: --steps: draws samples; --nll draws none (--nll-n: how many images)" "${nl[@]}" --steps 3
    refuse "casdm-eval: --scorer: scores samples; --nll scores none" "${nl[@]}" --scorer "$R/m/small_vgg.pt"
    refuse "casdm-eval: --nll-n: applies to --nll" "${ev[@]}" --nll-n 5
    refuse "casdm-eval: --scorer is required (except with --nll)" "$BIN/casdm-eval" --checkpoint "$R/run"
    refuse "casdm-eval: --nll is of a checkpoint's model (--checkpoint), not of --samples" "$BIN/casdm-eval" --samples "$R/s.npz" --nll ;;
  ablation)  # casdm-ablation: two tiny rows × two step counts → table.md, table.json, chart, grids
    R="$W.run" && rm -rf "$R" && mkdir -p "$R"
    "$BIN/casdm-metric" --steps 5 --batch 8 --widths 4,8 --image-size 16 --threads 1 --out "$R/m" > /dev/null ||
      fail "casdm-metric"
    for p in DDPM_Eps CasDM; do
      "$BIN/casdm-train" "${TINY[@]}" --preset $p --steps 2 --image-size 16 --fit resize --out "$R/$p" > /dev/null 2>&1 ||
        fail "train $p"
    done
    ab=("$BIN/casdm-ablation" --row "eps=$R/DDPM_Eps" --row "cas=$R/CasDM" --scorer "$R/m/small_vgg.pt" -n 10
        --batch 10 --ref-n 100 --grid 4 --threads 1)
    "${ab[@]}" --steps 2,3 --title "tiny" --out "$W/t" > /dev/null || fail "casdm-ablation"
    for f in table.md table.json table.html chart.png chart.svg steps.png steps.svg eps.png cas.png; do
      [ -s "$W/t/$f" ] || fail "missing $f"
    done
    "$PY" "$HERE/../tests/report_page.py" "$W/t/table.html" "$W/table.png" --grids 2 --charts 2 || fail "table.html in the browser"
    grep -q "<td>eps</td><td>DDPM_Eps</td><td class=\"n\">2</td><td class=\"n\">[0-9.]* ± [0-9.]*</td>" "$W/t/table.html" ||
      fail "table.html row"
    refuse "--row a/b=$R/CasDM: a label is a file name" "${ab[@]}" --row "a/b=$R/CasDM" --steps 2 --out "$W/o"
    grep -q "^| eps | DDPM_Eps | 2 |" "$W/t/table.md" || fail "table row eps"
    grep -q "^| cas | CasDM | 2 |" "$W/t/table.md" || fail "table row cas"
    grep -q "FD (domain) @2 | FD (domain) @3 |" "$W/t/table.md" || fail "table header"
    grep -q "| KID (domain) ×10³ @2 | KID (domain) ×10³ @3 |" "$W/t/table.md" || fail "table KID header"
    "$PY" -c "
import json, sys
j = json.load(open(sys.argv[1]))
assert [r['label'] for r in j['rows']] == ['eps', 'cas'] and j['steps'] == [2, 3], j
assert all(len(r['cells']) == 2 and all(c['fd'] > 0 and c['fd_std'] > 0 and c['sampling_seconds'] > 0 and c['kid_std'] > 0
           for c in r['cells']) for r in j['rows']), j
assert j['bootstrap'] == 50, j
" "$W/t/table.json" || fail "table.json"
    grep -q "^| eps | DDPM_Eps | 2 | [0-9.]* ± [0-9.]* |" "$W/t/table.md" || fail "table spread"
    # A second run with the same arguments reuses every cell (cells.json) and writes the same table.
    cp "$W/t/table.md" "$W/first.md"
    "${ab[@]}" --steps 2,3 --title "tiny" --out "$W/t" > /dev/null 2> "$W/again.err" || fail "casdm-ablation again"
    [ "$(grep -c "scored before" "$W/again.err")" = 4 ] || fail "cells not reused: $(cat "$W/again.err")"
    cmp -s "$W/first.md" "$W/t/table.md" || fail "the reused table differs"
    # --redraw: the same files again from table.json alone, nothing sampled.
    rm "$W/t/table.html" "$W/t/chart.png" "$W/t/steps.svg"
    "$BIN/casdm-ablation" --redraw --out "$W/t" > /dev/null || fail "--redraw"
    cmp -s "$W/first.md" "$W/t/table.md" || fail "the redrawn table differs"
    for f in table.html chart.png steps.svg; do [ -s "$W/t/$f" ] || fail "--redraw did not write $f"; done
    refuse "--redraw takes the table in --out, not --row, --scorer or --sampler" "${ab[@]}" --redraw --out "$W/t"
    # Another sampler: its own cells (none reused from DDIM's), named in the table and its JSON.
    "${ab[@]}" --steps 2 --sampler dpmpp2m --title "tiny" --out "$W/dpm" > /dev/null 2> "$W/dpm.err" || fail "--sampler dpmpp2m"
    grep -q "DPM-Solver++(2M) (log-SNR steps), EMA weights" "$W/dpm/table.md" || fail "the table does not name its sampler"
    "$PY" -c "import json, sys; j = json.load(open(sys.argv[1])); assert j['sampler'] == 'dpmpp2m', j" "$W/dpm/table.json" ||
      fail "table.json does not name its sampler"
    cp "$W/dpm/table.md" "$W/dpm.md" && "$BIN/casdm-ablation" --redraw --out "$W/dpm" > /dev/null && cmp -s "$W/dpm.md" "$W/dpm/table.md" ||
      fail "a dpmpp2m table redrawn differs"
    refuse "cannot open $W/o2/table.json (a table written before is needed)" "$BIN/casdm-ablation" --redraw --out "$W/o2"
    # Other arguments (here the seed) are other cells: sampled anew.
    "${ab[@]}" --steps 2 --seed 1 --title "tiny" --out "$W/t" > /dev/null 2> "$W/seed.err" || fail "casdm-ablation seed"
    ! grep -q "scored before" "$W/seed.err" || fail "a cell of seed 0 reused for seed 1"
    echo "not json" > "$W/t/cells.json"
    refuse "cells.json is not a cache of scores (remove it to start afresh)" "${ab[@]}" --steps 2 --out "$W/t"
    refuse "--bootstrap: 0 (none) or at least 2" "${ab[@]}" --steps 2 --bootstrap 1 --out "$W/o"
    refuse "--row eps: expected LABEL=CHECKPOINT" "${ab[@]}" --row eps --steps 2 --out "$W/o"
    refuse "--row eps=$R/CasDM: the label eps names two rows" "${ab[@]}" --row "eps=$R/CasDM" --steps 2 --out "$W/o"
    refuse "--steps: 2 is given twice" "${ab[@]}" --steps 2 3 2 --out "$W/o"
    refuse "--steps 30: more than" "${ab[@]}" --steps 30 --out "$W/o"
    refuse "cannot open $R/none.pt (no such file)" "${ab[@]}" --row "x=$R/none.pt" --steps 2 --out "$W/o"
    # SIGINT while a cell samples: the batch under way finishes, the cells scored before stay in
    # cells.json, nothing half-written is left, exit 130.
    "${ab[@]}" --steps 2,20 -n 2000 --out "$W/sig" > /dev/null 2> "$W/sig.err" & pid=$!
    for _ in $(seq 600); do grep -q "^eps, 20 DDIM steps" "$W/sig.err" && break; sleep 0.1; done
    kill -INT $pid; wait $pid; rc=$?
    tail -3 "$W/sig.err"
    [ $rc -eq 130 ] || fail "exit status $rc after SIGINT, expected 130"
    grep -qF "stopping after this batch of samples (a second Ctrl-C exits at once)" "$W/sig.err" || fail "no stopping line"
    grep -qF "casdm-ablation: stopped by SIGINT; the cells scored so far are kept in $W/sig/cells.json" "$W/sig.err" ||
      fail "no stop message"
    "$PY" -c "
import json, sys
keys = list(json.load(open(sys.argv[1])))
assert len(keys) == 1 and keys[0].startswith('eps|') and '|steps=2|' in keys[0], keys
" "$W/sig/cells.json" || fail "cells.json after the stop"
    ! ls -A "$W/sig" | grep -v "^cells.json$" || fail "files besides cells.json after the stop" ;;
  tables)  # scripts/tables.sh 4 at a tiny size; a row stopped part-way continues from its checkpoint, scored cells are kept
    R="$W.run" && rm -rf "$R" && mkdir -p "$R"
    "$BIN/casdm-metric" --steps 5 --batch 8 --widths 4,8 --image-size 16 --threads 1 --out "$R/m" > /dev/null ||
      fail "casdm-metric"
    t4() {
      STEPS=4 CHECKPOINT_EVERY=2 N=10 B="$BIN" RUNS="$R/runs" OUT="$W/t4" SCORER="$R/m/small_vgg.pt" \
        TRAIN_ARGS="--batch 4 --model-channels 8 --diffusion-steps 100 --image-size 16 --fit resize --samples 4 --sample-steps 2 --threads 1" \
        ABLATION_ARGS="--batch 10 --ref-n 100 --grid 4 --threads 1" bash "$HERE/../scripts/tables.sh" 4 > "$W/$1.log" 2>&1 ||
        { cat "$W/$1.log"; fail "tables.sh 4 ($1)"; }
    }
    t4 first
    for p in CasDM CasDM_FixRes CasDM_FixRes_Concat; do
      grep -q "^| $p | $p | 4 |" "$W/t4/table.md" || fail "table row $p"
    done
    grep -q "FD (domain) @10 | FD (domain) @100 |" "$W/t4/table.md" || fail "table header"
    # A stop after step 2 of one row: its last checkpoint gone, as after a kill between checkpoints.
    rm "$R/runs/CasDM_FixRes/checkpoints/ckpt-000000004.pt"
    [ -s "$R/runs/CasDM_FixRes/checkpoints/ckpt-000000002.pt" ] || fail "no checkpoint at step 2"
    t4 second
    grep -q "resumed from .*ckpt-000000002.pt at step 2" "$W/second.log" || { cat "$W/second.log"; fail "the row did not resume"; }
    [ "$(grep -c "resumed from" "$W/second.log")" -eq 1 ] || fail "a finished row was trained again"
    grep -q "^CasDM, 10 DDIM steps: scored before" "$W/second.log" || { cat "$W/second.log"; fail "a finished cell was sampled again"; }
    grep -q "^CasDM_FixRes, 10 DDIM steps$" "$W/second.log" || fail "the resumed row's cells were not sampled again"
    [ -s "$R/runs/CasDM_FixRes/checkpoints/ckpt-000000004.pt" ] || fail "the resumed row did not reach step 4"
    ;;
  report)  # the run's page: written at the start (reloading), rewritten as the run goes, final at the end; in a browser
    "$BIN/casdm-train" "${TINY[@]}" --steps 400 --sample-every 2 --out "$W/live" 2> "$W/live.err" & pid=$!
    for _ in $(seq 600); do [ -s "$W/live/samples-000000002.png" ] && [ -s "$W/live/index.html" ] && break; sleep 0.1; done
    kill -TERM $pid; wait $pid
    "$PY" - "$W/live/index.html" <<'PY' || fail "the page of a stopped run"
import sys
page = open(sys.argv[1]).read()
assert 'http-equiv="refresh"' not in page, "a stopped run's page still reloads"
assert "stopped by SIGTERM after step" in page and "continue with --resume" in page, page
assert "samples-000000002.png" in page, "the grid drawn before the stop is not on the page"
PY
    "$BIN/casdm-train" "${TINY[@]}" --steps 40 --sample-every 2 --out "$W/run" & pid=$!
    for _ in $(seq 600); do [ -s "$W/run/index.html" ] && break; sleep 0.05; done
    grep -q 'http-equiv="refresh"' "$W/run/index.html" || fail "the page of a running run does not reload"
    wait $pid || fail "run"
    "$PY" - "$W/run" <<'PY' || fail "the finished page"
import sys, PIL.Image
d = sys.argv[1]
page = open(d + "/index.html").read()
assert 'http-equiv="refresh"' not in page and "finished: 40 steps" in page, page
assert page.index("samples-000000002.png") < page.index("samples-000000038.png") < page.index("samples.png")
for grid, step in (("samples-000000002.png", 2), ("samples-000000004.png", 4), ("samples.png", 40)):
    caption = f"CasDM, step {step}, EMA 0.99 weights, 2 DDIM steps"
    assert f'<img src="{grid}" alt="{caption}"' in page, (grid, caption)
    assert PIL.Image.open(f"{d}/{grid}").text.get("Description") == caption, PIL.Image.open(f"{d}/{grid}").text
for f in ("loss.svg", "data.png", "checkpoints/ckpt-000000040.pt", "losses.csv", "run.json"):
    assert f'"{f}"' in page, f
for k in ("steps/s (this invocation)", "data wait", "parameters (trained)", "loss eps (mean of the last 10 %)", "lr"):
    assert f"<th>{k}</th>" in page, k
PY
    "$PY" "$HERE/../tests/report_page.py" "$W/run/index.html" "$W/index.png" --grids 4 --charts 1 || fail "in the browser" ;;
  progress)  # on a terminal, one line redrawn in place; into a file, plain lines
    if script -qec true /dev/null > /dev/null 2>&1; then  # a pseudo-terminal through script(1)
      TERM=xterm env -u CI script -qec "'$BIN/casdm-train' ${TINY[*]} --steps 4 --log-every 100 --out '$W/tty'" /dev/null \
        > "$W/tty.out" || fail "run on a terminal"
      grep -q $'\r\e\[2K4/4 \[====================\] 100% | ' "$W/tty.out" || fail "no live line: $(cat -v "$W/tty.out")"
      [ "$(grep -c $'\r\e\[2K' "$W/tty.out")" -ge 1 ] || fail "the line is not redrawn"
      ! grep -q "^step 4/4" "$W/tty.out" || fail "plain lines on a terminal"
    else
      echo "this machine gives no pseudo-terminal (script(1) failed): the terminal half is not run"
    fi
    CI=true "$BIN/casdm-train" "${TINY[@]}" --steps 4 --log-every 2 --out "$W/file" 2> "$W/file.err" || fail "run into a file"
    ! grep -q $'\r' "$W/file.err" || fail "carriage returns in a file"
    grep -q "^step 2/4 | .* steps/s | ETA .* | total " "$W/file.err" || fail "no plain line: $(cat "$W/file.err")"
    grep -q "^step 4/4 | " "$W/file.err" || fail "no last line" ;;
  distributed)  # 2 ranks (c10d Gloo on 127.0.0.1): the launcher and the variables set by hand equal one process; resume; a killed rank
    refuse "--batch 5 does not divide among 2 ranks" "$BIN/casdm-train" "${TINY[@]}" --batch 5 --steps 2 --nproc-per-node 2 --out "$W/o"
    refuse "--nproc-per-node: WORLD_SIZE is set already" env WORLD_SIZE=2 "$BIN/casdm-train" "${TINY[@]}" --nproc-per-node 2 --out "$W/o"
    args=("${TINY[@]}" --micro-batch 2 --grad-clip 0.5 --steps 4 --checkpoint-every 2)
    "$BIN/casdm-train" "${args[@]}" --out "$W/one" > /dev/null 2>&1 || fail "one process"
    "$BIN/casdm-train" "${args[@]}" --nproc-per-node 2 --out "$W/two" > "$W/two.out" 2>&1 || fail "two ranks: $(cat "$W/two.out")"
    port=$("$PY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
    for r in 1 0; do  # as torchrun or a scheduler sets them
      RANK=$r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$BIN/casdm-train" "${args[@]}" --out "$W/hand" \
        > "$W/hand$r.out" 2>&1 & pids[$r]=$!
    done
    wait "${pids[0]}" || fail "rank 0 by hand: $(cat "$W/hand0.out")"
    wait "${pids[1]}" || fail "rank 1 by hand: $(cat "$W/hand1.out")"
    [ ! -s "$W/hand1.out" ] || fail "rank 1 printed: $(cat "$W/hand1.out")"
    # Ranks started with other settings are refused on every rank, naming the setting and both values.
    for pair in "batch 8" "seed 3" "model-channels 16" "preset DDPM_Eps"; do
      set -- $pair
      port=$("$PY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
      RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$BIN/casdm-train" "${args[@]}" --dist-timeout 30 \
        --out "$W/mixed-$1" > "$W/mixed0.out" 2>&1 & p0=$!
      RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$BIN/casdm-train" "${args[@]}" --dist-timeout 30 \
        "--$1" "$2" --out "$W/mixed-$1" > "$W/mixed1.out" 2>&1 & p1=$!
      wait $p0; rc0=$?; wait $p1; rc1=$?
      cat "$W/mixed0.out" "$W/mixed1.out"
      [ $rc0 -eq 1 ] && [ $rc1 -eq 1 ] || fail "--$1 $2 on rank 1: exit statuses $rc0 and $rc1, expected 1"
      for r in 0 1; do
        grep -q "^casdm-train: --$1: $2 on rank 1, .* on rank 0 (every rank must be started with the same settings)$" \
          "$W/mixed$r.out" || fail "rank $r does not name --$1"
      done
      [ ! -e "$W/mixed-$1" ] || { find "$W/mixed-$1"; fail "--$1: the refused ranks left their folder"; }
    done
    "$BIN/casdm-train" "${TINY[@]}" --micro-batch 2 --grad-clip 0.5 --steps 2 --nproc-per-node 2 --out "$W/split" \
      > /dev/null 2>&1 || fail "two ranks, first half"
    "$BIN/casdm-train" --resume --steps 4 --threads 1 --samples 4 --sample-steps 2 --nproc-per-node 2 --out "$W/split" \
      > /dev/null 2>&1 || fail "two ranks, resumed"
    "$PY" - "$W" <<'PY' || fail "two ranks differ from one process"
import sys, torch
d = sys.argv[1]
load = lambda run: torch.load(f"{d}/{run}/checkpoints/ckpt-000000004.pt", weights_only=True)
one, two, hand, split = load("one"), load("two"), load("hand"), load("split")
keys = [k for k in one if k.startswith("model.")]
assert len(keys) > 50 and all(k in two for k in keys)
# float32 sums in another order (two shard means, an all-reduce): ~1e-7, carried by AdamW as lr·1e-3 at most
worst = max((one[k].double() - two[k].double()).abs().max().item() for k in keys)
assert worst < 2e-6, worst
for k, v in two.items():  # the launcher, the variables by hand, and a resume: the same bits
    if isinstance(v, torch.Tensor) and not k.startswith("rng"):
        assert torch.equal(v, hand[k]), k
        assert torch.equal(v, split[k]), k
PY
    cmp "$W/two/losses.csv" "$W/hand/losses.csv" || fail "loss logs of the two 2-rank runs differ"
    [ "$(wc -l < "$W/two/losses.csv")" -eq 5 ] || fail "losses.csv of two ranks"
    # A killed rank: the launcher names it and stops the other, well before the timeout.
    "$BIN/casdm-train" "${TINY[@]}" --steps 100000 --nproc-per-node 2 --dist-timeout 60 --out "$W/killed" \
      2> "$W/killed.err" & pid=$!
    for _ in $(seq 600); do grep -q "^step 3/" "$W/killed.err" && break; sleep 0.1; done
    for c in $(pgrep -P $pid); do tr '\0' '\n' < /proc/$c/environ | grep -qx RANK=1 && kill -KILL "$c"; done
    start=$SECONDS; wait $pid; rc=$?
    cat "$W/killed.err" | tail -3
    [ $rc -eq 137 ] || fail "exit status $rc after a rank was killed, expected 137"
    grep -q "casdm-train: rank 1 was killed by signal 9; the other ranks were stopped" "$W/killed.err" || fail "no message"
    [ $((SECONDS - start)) -lt 30 ] || fail "the run took $((SECONDS - start)) s to end"
    # A rank that hangs (stopped): the other gives up after --dist-timeout, naming what failed.
    "$BIN/casdm-train" "${TINY[@]}" --steps 100000 --nproc-per-node 2 --dist-timeout 5 --out "$W/hung" \
      2> "$W/hung.err" & pid=$!
    for _ in $(seq 600); do grep -q "^step 3/" "$W/hung.err" && break; sleep 0.1; done
    for c in $(pgrep -P $pid); do tr '\0' '\n' < /proc/$c/environ | grep -qx RANK=1 && kill -STOP "$c"; done
    start=$SECONDS; wait $pid; rc=$?
    tail -3 "$W/hung.err"
    [ $rc -eq 1 ] || fail "exit status $rc with a hung rank, expected 1"
    grep -q "casdm-train: rank 0: all-reduce failed — another rank has died or hangs" "$W/hung.err" || fail "no message"
    grep -q "casdm-train: rank 0 exited with status 1; the other ranks were stopped" "$W/hung.err" || fail "no launcher message"
    [ $((SECONDS - start)) -lt 40 ] || fail "the run took $((SECONDS - start)) s to end"
    # The launcher killed (SIGKILL): its ranks get SIGTERM, write their checkpoint and end, leaving no lock.
    "$BIN/casdm-train" "${TINY[@]}" --steps 100000 --nproc-per-node 2 --dist-timeout 60 --out "$W/orphaned" \
      2> "$W/orphaned.err" & pid=$!
    for _ in $(seq 600); do grep -q "^step 3/" "$W/orphaned.err" && break; sleep 0.1; done
    ranks=$(pgrep -P $pid | tr '\n' ' ')
    [ -n "$ranks" ] || fail "no ranks seen"
    kill -KILL $pid; wait $pid 2> /dev/null
    alive() { for r in $ranks; do [ -e /proc/$r ] && [ "$(awk '{print $3}' /proc/$r/stat 2> /dev/null)" != Z ] && return 0; done; return 1; }
    for _ in $(seq 600); do alive || break; sleep 0.1; done
    if alive; then kill -KILL $ranks; fail "ranks outlived their launcher"; fi
    tail -3 "$W/orphaned.err"
    [ ! -e "$W/orphaned/.lock" ] || fail "the ranks left the folder's lock"
    ls "$W/orphaned/checkpoints/"ckpt-*.pt > /dev/null || fail "the ranks wrote no checkpoint as they stopped"
    # A stop by SIGINT is said as a stop, not as a failed rank.
    "$BIN/casdm-train" "${TINY[@]}" --steps 100000 --nproc-per-node 2 --dist-timeout 60 --out "$W/interrupted" \
      2> "$W/interrupted.err" & pid=$!
    for _ in $(seq 600); do grep -q "^step 3/" "$W/interrupted.err" && break; sleep 0.1; done
    kill -INT $pid; wait $pid; rc=$?
    tail -3 "$W/interrupted.err"
    [ $rc -eq 130 ] || fail "exit status $rc after SIGINT, expected 130"
    grep -q "^casdm-train: the ranks stopped on SIGINT$" "$W/interrupted.err" || fail "the stop is not said"
    ! grep -q "the other ranks were stopped" "$W/interrupted.err" || fail "a stop said as a failure" ;;
  *) fail "unknown case $CASE" ;;
esac
echo "PASS $CASE"
