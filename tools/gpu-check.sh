#!/usr/bin/env bash
# On a GPU machine with PyTorch (DESIGN §7): configures casdm against PyTorch's LibTorch, builds
# the tests and benchmarks, runs the tests on CUDA and the CUDA benchmarks, and leaves logs in
# $OUT (default out/gpu). Needs .gpu-deps/ from tools/gpu-deps.sh (carried to the machine).
#   tools/gpu-check.sh            # everything
#   CASDM_TEST_DEVICES=cpu,cuda tools/gpu-check.sh   # also rerun the CPU cases there
#   CASDM_TEST_FILTER="[sampler]" CASDM_BENCH_FILTER=none tools/gpu-check.sh   # a subset
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }
deps=$PWD/.gpu-deps
[ -d "$deps/include/boost/hana" ] || { log "missing .gpu-deps (run tools/gpu-deps.sh here and carry .gpu-deps)"; exit 2; }
PY=$(command -v python3)
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; g++ --version | head -1;
  cmake --version | head -1; ninja --version; command -v nvcc; } > "$OUT/machine.txt" 2>&1
read -r TORCH_PREFIX TORCH_ROOT ABI TV < <($PY -c 'import torch,os;print(torch.utils.cmake_prefix_path, os.path.dirname(torch.__file__), int(torch._C._GLIBCXX_USE_CXX11_ABI), torch.__version__)')
log "torch $TV at $TORCH_ROOT (cxx11 abi $ABI), cuda available: $($PY -c 'import torch;print(torch.cuda.is_available())')"
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
common=("${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCASDM_BUILD_EXAMPLES=OFF -DCASDM_INSTALL=OFF
        -DCASDM_HANA_INCLUDE_DIR="$deps/include" -DCASDM_FMT_INCLUDE_DIR="$deps/include" -DCASDM_JSON_INCLUDE_DIR="$deps/include" -DCASDM_CATCH2_INCLUDE_DIR="$deps/include"
        -DCASDM_BENCHMARK_SOURCE_DIR="$deps/benchmark" -DCASDM_PYTHON="$PY")
[ -f /usr/include/zlib.h ] || common+=(-DCASDM_ZLIB_INCLUDE_DIR="$deps/include")  # with the system's libz.so.1
B=build-gpu
t0=$(date +%s)
if ! cmake -S . -B $B "${common[@]}" -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" > "$OUT/configure.log" 2>&1; then
  log "TorchConfig.cmake failed (see configure.log); using CASDM_TORCH_ROOT"
  rm -rf $B
  cmake -S . -B $B "${common[@]}" -DCASDM_TORCH_ROOT="$TORCH_ROOT" -DCASDM_TORCH_CXX11_ABI="$ABI" \
    > "$OUT/configure-root.log" 2>&1 || { log "configure failed"; tail -30 "$OUT/configure-root.log"; exit 3; }
fi
cmake --build $B -j"$(nproc)" --target casdm_tests casdm_bench casdm_bench_metrics casdm_bench_eager > "$OUT/build.log" 2>&1 ||
  { log "build failed"; grep -m20 -A5 "error" "$OUT/build.log"; exit 4; }
log "configure + build: $(( $(date +%s) - t0 )) s"
export CASDM_TEST_DEVICES=${CASDM_TEST_DEVICES:-cuda}
filter_default=""
if ! $PY -c 'import torchvision' 2>/dev/null; then  # the metric references need it
  filter_default="~[metric]"; log "no torchvision here: [metric] test cases left out"
fi
t0=$(date +%s)
timeout "${CASDM_TEST_TIMEOUT:-240}" $B/tests/casdm_tests --durations yes ${CASDM_TEST_FILTER:-$filter_default} > "$OUT/tests.txt" 2>&1; rc=$?
log "tests (devices: $CASDM_TEST_DEVICES): rc=$rc in $(( $(date +%s) - t0 )) s: $(tail -2 "$OUT/tests.txt" | tr '\n' ' ')"
# The hidden [cuda] cases compare each accelerator with the CPU (nothing to compare on a CPU machine).
if [ -z "${CASDM_TEST_FILTER:-}" ] && [ -z "$filter_default" ]; then
  timeout 120 $B/tests/casdm_tests --durations yes "[cuda]" >> "$OUT/tests.txt" 2>&1 || rc=$?
  log "[cuda] cases: $(tail -2 "$OUT/tests.txt" | tr '\n' ' ')"
fi
# Benchmarks: one text file for both programs (what comes back from a device run is limited in files).
t0=$(date +%s)
{ timeout 120 $B/bench/casdm_bench --benchmark_filter="${CASDM_BENCH_FILTER:-cuda}" --benchmark_min_time=0.3
  timeout 150 $B/bench/casdm_bench_metrics --benchmark_filter="${CASDM_BENCH_FILTER:-cuda}" --benchmark_min_time=0.3 \
    --benchmark_counters_tabular=true; } > "$OUT/bench.txt" 2>&1
log "bench rc=$? in $(( $(date +%s) - t0 )) s"
cat "$OUT/bench.txt"
# casdm against PyTorch eager on the card (issue 12 item 5): the paper's CIFAR-10 configuration,
# MFU against the card's dense bf16 peak (H100 SXM 989 TFLOP/s; H200 the same), then the launch-bound
# main-job size; per-operator profiles of a CasDM step beside.
if [ "${CASDM_VS_PYTORCH:-1}" = 1 ]; then
  t0=$(date +%s)
  timeout 240 $PY bench/vs_pytorch.py --binary $B/bench/casdm_bench_eager --python "$PY" --device cuda --config paper --train-batch 128 \
    --rounds 1 --min-time 2 --peak-tflops 989 --out "$OUT/vs-pytorch-paper" > "$OUT/vs-pytorch.txt" 2>&1
  timeout 120 $PY bench/vs_pytorch.py --binary $B/bench/casdm_bench_eager --python "$PY" --device cuda --config main \
    --rounds 1 --min-time 1 --out "$OUT/vs-pytorch-main" >> "$OUT/vs-pytorch.txt" 2>&1
  timeout 60 $B/bench/casdm_bench_eager --device cuda --config paper --batch 128 --profile 5 train/CasDM ddim/CasDM \
    > "$OUT/profile-cuda.md" 2>&1
  log "vs PyTorch eager in $(( $(date +%s) - t0 )) s"
  cat "$OUT/vs-pytorch.txt"
fi
exit $rc
