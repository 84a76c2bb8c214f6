"""Swin-T stage outputs computed by torchvision on random weights (the position-bias tables and
norms randomised too), and the Swin feature distance, for the C++ implementation to match.
usage: swin_ref.py DIR → DIR/swin_t.pt (torchvision's "features.*" names), DIR/expected.pt:
x, y [2, 3, 64, 64] in [0, 1]; stage.<l> (of normalised x, eval mode); distance (x vs y);
z [1, 3, 40, 100] (a non-square input: padding, and a shift along one side only); zstage.<l>."""
import os
import sys

import torch
import torchvision

out_dir = sys.argv[1]
torch.manual_seed(3)
m = torchvision.models.swin_t(weights=None)
with torch.no_grad():
    for name, p in m.named_parameters():
        if "relative_position_bias_table" in name:
            p.uniform_(-1, 1)
        elif "norm" in name and name.endswith("weight"):
            p.uniform_(0.5, 1.5)
        elif name.endswith("bias"):
            p.uniform_(-0.1, 0.1)
m.eval()
torch.save({k: v for k, v in m.state_dict().items() if k.startswith("features.")}, os.path.join(out_dir, "swin_t.pt"))
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def stages(img):
    h = (img - mean) / std
    out = []
    for i, layer in enumerate(m.features):
        h = layer(h)
        if i % 2 == 1:
            out.append(h)
    return out


x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
z = torch.rand(1, 3, 40, 100)
exp = {"x": x, "y": y, "z": z}
with torch.no_grad():
    sx, sy = stages(x), stages(y)
    for l, s in enumerate(sx):
        exp[f"stage.{l}"] = s
    exp["distance"] = sum(((u - v) ** 2).mean(dim=[1, 2, 3]) for u, v in zip(sx, sy)) / 4
    for l, s in enumerate(stages(z)):
        exp[f"zstage.{l}"] = s
torch.save(exp, os.path.join(out_dir, "expected.pt"))
