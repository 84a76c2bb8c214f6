#!/usr/bin/env bash
# Fuzzes casdm's readers with libFuzzer (clang, ASan + UBSan), each target for a bounded time.
#   bash scripts/fuzz.sh [SECONDS [TARGET...]]   SECONDS per target (default 60; 0: build only)
#   targets: idx cifar10 image checkpoint options (default: all)
# Builds in build-fuzz/ (its own tree: clang, sanitizers); new inputs go to build-fuzz/corpus/<target>,
# the committed seeds are fuzz/corpus/<target>. A crash leaves build-fuzz/crash-*, and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(idx cifar10 image checkpoint options)
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
B=build-fuzz
if [ ! -f $B/CMakeCache.txt ]; then
  launcher=(); command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" \
    -DCASDM_BUILD_TESTS=OFF -DCASDM_BUILD_EXAMPLES=OFF -DCASDM_BUILD_BENCHMARKS=OFF -DCASDM_INSTALL=OFF \
    -DCASDM_BUILD_FUZZERS=ON > /dev/null
fi
cmake --build $B --target casdm_fuzz
[ "$secs" -gt 0 ] || exit 0
# LibTorch is not instrumented: its containers would look overflowed to ASan, and leaks of its
# global singletons are not ours.
export ASAN_OPTIONS=detect_leaks=0:detect_container_overflow=0:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for t in "${targets[@]}"; do
  mkdir -p $B/corpus/$t $B/artifacts/$t
  log=$B/fuzz-$t.log
  if CASDM_FUZZ_TARGET=$t $B/fuzz/casdm_fuzz -max_total_time="$secs" -rss_limit_mb=4096 -timeout=30 -max_len=65536 \
       -print_final_stats=1 -artifact_prefix=$B/artifacts/$t/ $B/corpus/$t fuzz/corpus/$t > "$log" 2>&1; then
    echo "fuzz $t: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') executions in ${secs} s, no crash"
  else
    status=1
    echo "fuzz $t: FAILED — $(grep -m1 -E 'ERROR|SUMMARY|deadly signal|timeout|out-of-memory' "$log" || tail -1 "$log")"
    ls $B/artifacts/$t/
    tail -40 "$log"
  fi
done
exit $status
