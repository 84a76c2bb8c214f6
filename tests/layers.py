#!/usr/bin/python3
"""The include graph keeps its layers: io → core → policies → model → train/eval/report → app.

Every `#include "casdm/..."` in include/casdm is checked against the rule below; one line per
violation, exit 1 if any. Run: python3 tests/layers.py [repository root]."""
import pathlib
import re
import sys

RANK = {"io": 0, "detail": 0, "core": 1,
        "schedule": 2, "net": 2, "topology": 2, "sampler": 2, "metric": 2, "loss": 2, "data": 2,
        "denoiser": 3, "objective": 3, "model": 3, "presets": 3,
        "train": 4, "eval": 4, "report": 4, "casdm": 5, "app": 5}
# Policies may use one another only along these edges (a topology builds nets, a loss uses
# metric networks and the options the topology reads).
POLICY_EDGES = {("topology", "net"), ("loss", "metric"), ("loss", "topology")}


def part(rel: pathlib.PurePath) -> str:
    """The layer a header under include/casdm belongs to: its folder, or its stem at top level."""
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def allowed(src: str, dst: str) -> bool:
    if src == dst:
        return True
    if RANK[src] != RANK[dst]:
        return RANK[dst] < RANK[src]
    if RANK[src] == 2:
        return (src, dst) in POLICY_EDGES
    return RANK[src] == 3  # the model-level headers build on one another (model → denoiser)


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".") / "include" / "casdm"
    bad = []
    headers = sorted(root.rglob("*.hpp"))
    if not headers:
        print(f"layers: no headers under {root}")
        return 1
    for h in headers:
        src = part(h.relative_to(root))
        for n, line in enumerate(h.read_text().splitlines(), 1):
            m = re.match(r'\s*#\s*include\s+"casdm/([^"]+)"', line)
            if not m:
                continue
            dst = part(pathlib.PurePath(m.group(1)))
            if src not in RANK or dst not in RANK:
                bad.append(f"{h.relative_to(root.parent.parent)}:{n}: layer of '{src}' or '{dst}' unknown")
            elif not allowed(src, dst):
                bad.append(f"{h.relative_to(root.parent.parent)}:{n}: {src} includes {dst} ({m.group(1)})")
    for b in bad:
        print(b)
    print(f"layers: {len(headers)} headers, {len(bad)} violations")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
