"""The feature losses' image transform T, computed by PyTorch: bilinear resize (align_corners=False)
to S x S, [-1, 1] -> [0, 1], one channel repeated to three. usage: transform_ref.py IN OUT
IN: "grey" [N, 1, H, W] and "rgb" [N, 3, H, W] (float64), "sizes" (int64); OUT: "<name>@<S>"."""
import sys

import torch
import torch.nn.functional as F

inp = torch.load(sys.argv[1], weights_only=True)
out = {}
for name in ("grey", "rgb"):
    x = inp[name]
    for s in inp["sizes"].tolist():
        y = (F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False) + 1) / 2
        if y.shape[1] == 1:
            y = y.repeat(1, 3, 1, 1)
        out[f"{name}@{s}"] = y
torch.save(out, sys.argv[2])
