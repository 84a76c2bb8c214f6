"""Exits 0 when two casdm checkpoints hold bit-identical tensors under the same names (weights,
EMA copies, optimiser state, generator state) and the same step; prints what differs otherwise.
usage: same_checkpoint.py A B"""
import sys

import torch

a, b = torch.load(sys.argv[1], weights_only=True), torch.load(sys.argv[2], weights_only=True)
ta = {k: v for k, v in a.items() if torch.is_tensor(v)}
tb = {k: v for k, v in b.items() if torch.is_tensor(v)}
bad = sorted(set(ta) ^ set(tb))
bad += [k for k in sorted(set(ta) & set(tb)) if ta[k].shape != tb[k].shape or not torch.equal(ta[k], tb[k])]
if a["casdm.step"] != b["casdm.step"]:
    bad.append("casdm.step")
if bad:
    print(f"{len(bad)} of {len(ta)} entries differ, e.g. {bad[:5]}")
    sys.exit(1)
print(f"{len(ta)} tensors identical")
