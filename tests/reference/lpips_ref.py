"""VGG16 features and LPIPS computed by torchvision's VGG16 and piq's formula (LPIPS, distance
"mse"), on random weights, for the C++ implementation to match. usage: lpips_ref.py DIR
Writes DIR/vgg16_features.pt (torchvision names), DIR/lpips_linear.pt ("lin0".."lin4"),
DIR/expected.pt: a, b [3, 3, 64, 64] in [0, 1]; feat.<max|avg>.<l> (features of a at relu1_2 …
relu5_3, with MaxPool or AvgPool2d(2, 2)); lpips.<max|avg> (d(a, b)); lpips_ba.avg (d(b, a))."""
import os
import sys

import torch
import torchvision

out_dir = sys.argv[1]
torch.manual_seed(0)
vgg = torchvision.models.vgg16().eval()
torch.save({k: v for k, v in vgg.state_dict().items() if k.startswith("features.")},
           os.path.join(out_dir, "vgg16_features.pt"))
channels = [64, 128, 256, 512, 512]
lin = {f"lin{i}": torch.rand(1, c, 1, 1) * 0.2 for i, c in enumerate(channels)}
torch.save(lin, os.path.join(out_dir, "lpips_linear.pt"))

a, b = torch.rand(3, 3, 64, 64), torch.rand(3, 3, 64, 64)
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
taps = [3, 8, 15, 22, 29]


def features(x, avg):
    x = (x - mean) / std
    feats = []
    for i, layer in enumerate(vgg.features):
        if isinstance(layer, torch.nn.MaxPool2d) and avg:
            layer = torch.nn.AvgPool2d(kernel_size=2, stride=2)
        x = layer(x)
        if i in taps:
            feats.append(x)
    return feats


def lpips(x, y, avg):  # piq.ContentLoss with normalize_features=True, distance "mse"
    fx, fy = features(x, avg), features(y, avg)
    fx = [f / (torch.sqrt(torch.sum(f ** 2, dim=1, keepdim=True)) + 1e-10) for f in fx]
    fy = [f / (torch.sqrt(torch.sum(f ** 2, dim=1, keepdim=True)) + 1e-10) for f in fy]
    d = [(u - v) ** 2 for u, v in zip(fx, fy)]
    w = [lin[f"lin{i}"] for i in range(5)]
    return torch.cat([(di * wi).mean(dim=[2, 3]) for di, wi in zip(d, w)], dim=1).sum(dim=1)


exp = {"a": a, "b": b}
with torch.no_grad():
    for avg in (False, True):
        name = "avg" if avg else "max"
        for l, f in enumerate(features(a, avg)):
            exp[f"feat.{name}.{l}"] = f
        exp[f"lpips.{name}"] = lpips(a, b, avg)
    exp["lpips_ba.avg"] = lpips(b, a, True)
torch.save(exp, os.path.join(out_dir, "expected.pt"))
