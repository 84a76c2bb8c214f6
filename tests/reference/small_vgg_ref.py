"""The SmallVGG distance (LPIPS's formula with unit weights) and logits, computed by PyTorch from a
weights file casdm wrote. usage: small_vgg_ref.py WEIGHTS INPUTS OUT
WEIGHTS: features.<i>.weight/bias, classifier.*, casdm.small_vgg.widths; INPUTS: a, b [N, 3, H, W]
in [0, 1]; OUT: distance [N], logits [N, classes] (of a)."""
import sys

import torch
import torch.nn.functional as F

w = {k: v.double() if torch.is_tensor(v) else v for k, v in torch.load(sys.argv[1], weights_only=True).items()}
inp = torch.load(sys.argv[2], weights_only=True)
widths = [int(c) for c in w["casdm.small_vgg.widths"].split(",")]


def stages(x):
    h, i, out = (x - 0.5) / 0.5, 0, []
    for s, _ in enumerate(widths):
        if s > 0:
            h = F.max_pool2d(h, 2, 2)
            i += 1
        for _ in range(2):
            h = F.relu(F.conv2d(h, w[f"features.{i}.weight"], w[f"features.{i}.bias"], padding=1))
            i += 2
        out.append(h)
    return out


def unit(f):
    return f / (torch.sqrt(torch.sum(f ** 2, dim=1, keepdim=True)) + 1e-10)


with torch.no_grad():
    fa, fb = stages(inp["a"].double()), stages(inp["b"].double())
    d = sum(((unit(u) - unit(v)) ** 2).sum(dim=1).mean(dim=[1, 2]) for u, v in zip(fa, fb))
    logits = F.linear(fa[-1].mean(dim=[2, 3]), w["classifier.weight"], w["classifier.bias"])
torch.save({"distance": d.float(), "logits": logits.float()}, sys.argv[3])
