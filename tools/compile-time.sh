#!/usr/bin/env bash
# Compile time and peak memory of one translation unit, without ccache or a PCH:
#   (a) #include <torch/torch.h> and nothing else
#   (b) #include <casdm/presets/table1.hpp> with CasDM's training step and sampler instantiated
#       (what a user of the Table 1 rows compiles)
#   (c) #include <casdm/presets.hpp> (every preset, the metric networks and the weight-file reader
#       parsed) with the same single instantiation
#   (d) #include <casdm/casdm.hpp> with every preset instantiated
#   (e) (b) as the repository's programs and tests compile it: linking the compiled presets
#       (CASDM_PRESETS_LIBRARY: the preset's code is declared extern, compiled once in src/)
# Prints each, and (b)/(a) and (e)/(a).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
fmt_flags=$(pkg-config --cflags fmt 2>/dev/null || true)
flags=(-std=c++20 -O2 -c -Iinclude -I/usr/include/torch/csrc/api/include -D_GLIBCXX_USE_CXX11_ABI=1 $fmt_flags)
echo '#include <torch/torch.h>
int main() { return at::ones({2}).sum().item<int>(); }' > "$tmp/a.cpp"
echo '#include <casdm/presets/table1.hpp>
int main() { casdm::presets::CasDM m; m->training_losses(at::zeros({1, 3, 32, 32})).total.backward(); return m->sample(1).numel() > 0; }' > "$tmp/b.cpp"
echo '#include <casdm/presets.hpp>
int main() { casdm::presets::CasDM m; m->training_losses(at::zeros({1, 3, 32, 32})).total.backward(); return m->sample(1).numel() > 0; }' > "$tmp/c.cpp"
{ echo '#include <casdm/casdm.hpp>
int main() { int n = 0; casdm::presets::for_each([&](const char*, auto t) { typename decltype(t)::type m;
  m->training_losses(at::zeros({1, 3, 32, 32})).total.backward(); n += m->sample(1).numel(); }); return n; }'; } > "$tmp/d.cpp"
cp "$tmp/b.cpp" "$tmp/e.cpp"
declare -A secs
for f in ${CASDM_COMPILE_CASES:-a b c d e}; do
  extra=()
  [ "$f" = e ] && extra=(-DCASDM_PRESETS_LIBRARY)
  /usr/bin/time -f "%e s, %M KiB peak" g++ "${flags[@]}" "${extra[@]}" "$tmp/$f.cpp" -o "$tmp/$f.o" 2> "$tmp/$f.time"
  printf '%s: %s\n' "$f" "$(tail -1 "$tmp/$f.time")"
  secs[$f]=$(tail -1 "$tmp/$f.time" | cut -d' ' -f1)
done
for f in b e; do
  if [ -n "${secs[a]:-}" ] && [ -n "${secs[$f]:-}" ]; then
    python3 -c "print(f'$f/a: {${secs[$f]} / ${secs[a]}:.2f}x')"
  fi
done
rm -rf "$tmp"
