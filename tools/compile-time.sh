#!/usr/bin/env bash
# Compile time and peak memory of one translation unit, without ccache or a PCH:
#   (a) #include <torch/torch.h> and nothing else
#   (b) #include <casdm/presets/table1.hpp> with CasDM's training step and sampler instantiated
#       (what a user of the Table 1 rows compiles)
#   (c) #include <casdm/presets.hpp> (every preset, the metric networks and the weight-file reader
#       parsed) with the same single instantiation
#   (d) #include <casdm/casdm.hpp> with every preset instantiated
# Prints each, and (b)/(a).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
fmt_flags=$(pkg-config --cflags fmt 2>/dev/null || true)
flags=(-std=c++20 -O2 -c -Iinclude -I/usr/include/torch/csrc/api/include -D_GLIBCXX_USE_CXX11_ABI=1 -DFMT_HEADER_ONLY=1 $fmt_flags)
echo '#include <torch/torch.h>
int main() { return at::ones({2}).sum().item<int>(); }' > "$tmp/a.cpp"
echo '#include <casdm/presets/table1.hpp>
int main() { casdm::presets::CasDM m; m->training_losses(at::zeros({1, 3, 32, 32})).total.backward(); return m->sample(1).numel() > 0; }' > "$tmp/b.cpp"
echo '#include <casdm/presets.hpp>
int main() { casdm::presets::CasDM m; m->training_losses(at::zeros({1, 3, 32, 32})).total.backward(); return m->sample(1).numel() > 0; }' > "$tmp/c.cpp"
{ echo '#include <casdm/casdm.hpp>
int main() { int n = 0; casdm::presets::for_each([&](const char*, auto t) { typename decltype(t)::type m;
  m->training_losses(at::zeros({1, 3, 32, 32})).total.backward(); n += m->sample(1).numel(); }); return n; }'; } > "$tmp/d.cpp"
declare -A secs
for f in ${CASDM_COMPILE_CASES:-a b c d}; do
  /usr/bin/time -f "%e s, %M KiB peak" g++ "${flags[@]}" "$tmp/$f.cpp" -o "$tmp/$f.o" 2> "$tmp/$f.time"
  printf '%s: %s\n' "$f" "$(tail -1 "$tmp/$f.time")"
  secs[$f]=$(tail -1 "$tmp/$f.time" | cut -d' ' -f1)
done
if [ -n "${secs[a]:-}" ] && [ -n "${secs[b]:-}" ]; then
  python3 -c "print(f'b/a: {${secs[b]} / ${secs[a]}:.2f}x')"
fi
rm -rf "$tmp"
