#!/usr/bin/env python3
"""Exports the pretrained metric networks casdm loads, as plain dicts {name: tensor} written by
torch.save (casdm checks every name and shape when it loads them).

    python3 tools/export_weights.py --out weights/ [--lpips-linear PATH]

Writes
  weights/vgg16_features.pt   torchvision's VGG16 (ImageNet) `features.*` — LPIPS's backbone
  weights/lpips_linear.pt     LPIPS's five 1x1 weights as "lin0" .. "lin4", shapes [1, C, 1, 1]
  weights/resnet50.pt         torchvision's ResNet-50 (ImageNet, V1 weights) without `fc.*`

Needs PyTorch and torchvision with the ImageNet weights (downloaded by torchvision on first use,
or already in its cache), and LPIPS's linear weights: either the `lpips` package's
`weights/v0.1/vgg.pth` (keys "lin<i>.model.1.weight"), piq's `lpips_weights.pt` (a list of five
tensors), or the same file given with --lpips-linear. Run once, on any machine with network access;
copy the folder where casdm runs.
"""
import argparse
import os
import sys

import torch


def linear_from(path):
    w = torch.load(path, map_location="cpu")
    if isinstance(w, (list, tuple)):  # piq's release: [w0, ..., w4]
        ws = list(w)
    elif isinstance(w, dict) and all(f"lin{i}.model.1.weight" in w for i in range(5)):  # lpips package
        ws = [w[f"lin{i}.model.1.weight"] for i in range(5)]
    elif isinstance(w, dict) and all(f"lin{i}" in w for i in range(5)):  # casdm's own format
        ws = [w[f"lin{i}"] for i in range(5)]
    else:
        sys.exit(f"{path}: not an LPIPS linear-weights file (lpips package, piq, or casdm format)")
    out = {}
    for i, (t, c) in enumerate(zip(ws, [64, 128, 256, 512, 512])):
        t = torch.as_tensor(t).float().reshape(1, c, 1, 1)
        out[f"lin{i}"] = t.contiguous()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--lpips-linear", help="LPIPS linear weights (lpips package vgg.pth or piq lpips_weights.pt)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)

    import torchvision
    vgg = torchvision.models.vgg16(weights=torchvision.models.VGG16_Weights.IMAGENET1K_V1)
    feats = {k: v.contiguous() for k, v in vgg.state_dict().items() if k.startswith("features.")}
    torch.save(feats, os.path.join(a.out, "vgg16_features.pt"))
    print(f"wrote {a.out}/vgg16_features.pt ({len(feats)} tensors)")

    rn = torchvision.models.resnet50(weights=torchvision.models.ResNet50_Weights.IMAGENET1K_V1)
    torch.save({k: v.contiguous() for k, v in rn.state_dict().items() if not k.startswith("fc.")},
               os.path.join(a.out, "resnet50.pt"))
    print(f"wrote {a.out}/resnet50.pt")

    src = a.lpips_linear
    if src is None:
        try:
            import lpips  # noqa: F401  (pip package: its weights ship with it)
            src = os.path.join(os.path.dirname(lpips.__file__), "weights", "v0.1", "vgg.pth")
        except ImportError:
            sys.exit("no LPIPS linear weights: pass --lpips-linear (the lpips package's weights/v0.1/vgg.pth, or "
                     "piq's lpips_weights.pt from its GitHub release v0.4.1)")
    torch.save(linear_from(src), os.path.join(a.out, "lpips_linear.pt"))
    print(f"wrote {a.out}/lpips_linear.pt")


if __name__ == "__main__":
    main()
