"""torch.optim.AdamW and torch.nn.utils.clip_grad_norm_ on the parameters and gradient sequence
in IN (float64): "p.<i>" initial parameters, "g.<k>.<i>" the gradient of parameter i at step k
(absent: no gradient that step), scalars "lr", "wd", "clip" (0: off), "steps".
Writes OUT: "p.<i>" final parameters, "exp_avg.<i>", "exp_avg_sq.<i>", "norm.<k>" (the norm
before clipping at step k). usage: adamw_ref.py IN OUT"""
import sys

import torch

d = torch.load(sys.argv[1], weights_only=True)
n = sum(1 for k in d if k.startswith("p."))
params = [torch.nn.Parameter(d[f"p.{i}"].clone()) for i in range(n)]
opt = torch.optim.AdamW(params, lr=d["lr"].item(), weight_decay=d["wd"].item(), foreach=False)
clip = d["clip"].item()
out = {}
for k in range(int(d["steps"].item())):
    for i, p in enumerate(params):
        g = d.get(f"g.{k}.{i}")
        p.grad = None if g is None else g.clone()
    if clip > 0:
        out[f"norm.{k}"] = torch.nn.utils.clip_grad_norm_(params, clip).detach().clone()
    opt.step()
for i, p in enumerate(params):
    out[f"p.{i}"] = p.detach().clone()
    out[f"exp_avg.{i}"] = opt.state[p]["exp_avg"]
    out[f"exp_avg_sq.{i}"] = opt.state[p]["exp_avg_sq"]
torch.save(out, sys.argv[2])
