#!/usr/bin/env python3
"""Exports the pretrained metric networks casdm loads, as plain dicts {name: tensor} written by
torch.save (casdm checks every name and shape when it loads them).

    python3 tools/export_weights.py --out weights/ [--lpips-linear PATH] [--fid-inception PATH]
                                    [--only vgg16,lpips,resnet50,inception,swin,fid]

Writes
  weights/vgg16_features.pt   torchvision's VGG16 (ImageNet) `features.*` — LPIPS's backbone
  weights/lpips_linear.pt     LPIPS's five 1x1 weights as "lin0" .. "lin4", shapes [1, C, 1, 1]
  weights/resnet50.pt         torchvision's ResNet-50 (ImageNet, V1 weights) without `fc.*`
  weights/inception_v3.pt     torchvision's Inception v3 (ImageNet) without `AuxLogits.*` and `fc.*`
  weights/swin_t.pt           torchvision's Swin-T (ImageNet) `features.*`
  weights/inception_fid.pt    with --fid-inception: pytorch-fid's FID Inception (the 2015 TensorFlow
                              graph's weights, pt_inception-2015-12-05-6726825d.pth), fc included

Needs PyTorch and torchvision with the ImageNet weights (downloaded by torchvision on first use,
or already in its cache), and LPIPS's linear weights: either the `lpips` package's
`weights/v0.1/vgg.pth` (keys "lin<i>.model.1.weight"), piq's `lpips_weights.pt` (a list of five
tensors), or the same file given with --lpips-linear. Run once, on any machine with network access;
copy the folder where casdm runs.

--random writes the same files from randomly initialised networks (no download): for testing
that every file loads in casdm, never for training.
"""
import argparse
import os
import sys

import torch

ALL = ["vgg16", "lpips", "resnet50", "inception", "swin", "fid"]


def linear_from(path):
    w = torch.load(path, map_location="cpu", weights_only=True)
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
        t = torch.as_tensor(t).float()
        if t.numel() != c:
            sys.exit(f"{path}: LPIPS layer {i} has {t.numel()} weights, expected {c}")
        out[f"lin{i}"] = t.reshape(1, c, 1, 1).contiguous()
    return out


def save(state, out_dir, name, keep=lambda k: True):
    d = {k: v.contiguous() for k, v in state.items() if keep(k)}
    torch.save(d, os.path.join(out_dir, name))
    print(f"wrote {out_dir}/{name} ({len(d)} tensors)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--lpips-linear", help="LPIPS linear weights (lpips package vgg.pth or piq lpips_weights.pt)")
    ap.add_argument("--fid-inception", help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth")
    ap.add_argument("--only", default=",".join(ALL), help="comma-separated subset of " + ",".join(ALL))
    ap.add_argument("--random", action="store_true", help="random weights, no download (tests only)")
    a = ap.parse_args()
    only = [s for s in a.only.split(",") if s]
    unknown = [s for s in only if s not in ALL]
    if unknown:
        sys.exit(f"--only: unknown {','.join(unknown)} (choose from {','.join(ALL)})")
    if "fid" in only and a.fid_inception is None and not a.random:
        only.remove("fid")  # optional: only with the file
    os.makedirs(a.out, exist_ok=True)

    import torchvision
    m = torchvision.models

    def weights(enum):
        return None if a.random else enum.IMAGENET1K_V1

    if "vgg16" in only:
        save(m.vgg16(weights=weights(m.VGG16_Weights)).state_dict(), a.out, "vgg16_features.pt",
             lambda k: k.startswith("features."))
    if "resnet50" in only:
        save(m.resnet50(weights=weights(m.ResNet50_Weights)).state_dict(), a.out, "resnet50.pt",
             lambda k: not k.startswith("fc."))
    if "inception" in only:
        net = m.inception_v3(weights=weights(m.Inception_V3_Weights), aux_logits=True, init_weights=False)
        save(net.state_dict(), a.out, "inception_v3.pt", lambda k: not k.startswith(("AuxLogits.", "fc.")))
    if "swin" in only:
        save(m.swin_t(weights=weights(m.Swin_T_Weights)).state_dict(), a.out, "swin_t.pt",
             lambda k: k.startswith("features."))
    if "fid" in only:
        if a.random:
            state = m.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008).state_dict()
        else:
            state = torch.load(a.fid_inception, map_location="cpu", weights_only=True)
            if "fc.weight" not in state or tuple(state["fc.weight"].shape) != (1008, 2048):
                sys.exit(f"{a.fid_inception}: not pytorch-fid's FID Inception weights (no fc [1008, 2048])")
        save(state, a.out, "inception_fid.pt", lambda k: not k.startswith("AuxLogits."))
    if "lpips" in only:
        src = a.lpips_linear
        if a.random and src is None:  # the lpips package's layout, through the same conversion
            src = os.path.join(a.out, "random_lpips_vgg.pth")
            torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) * 0.1
                        for i, c in enumerate([64, 128, 256, 512, 512])}, src)
        if src is None:
            try:
                import lpips  # noqa: F401  (pip package: its weights ship with it)
                src = os.path.join(os.path.dirname(lpips.__file__), "weights", "v0.1", "vgg.pth")
            except ImportError:
                sys.exit("no LPIPS linear weights: pass --lpips-linear (the lpips package's weights/v0.1/vgg.pth, or "
                         "piq's lpips_weights.pt from its GitHub release v0.4.1)")
        save(linear_from(src), a.out, "lpips_linear.pt")


if __name__ == "__main__":
    main()
