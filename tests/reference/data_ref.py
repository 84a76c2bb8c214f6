"""Writes small data sets in the formats casdm reads, and what an independent reader (numpy, PIL,
torch.nn.functional.interpolate) gets from them. usage: data_ref.py DIR
  DIR/cifar/{data_batch_1..5,test_batch}.bin  3 records each; expected: cifar_images/labels (train)
  DIR/gray/*.png        3 grayscale 12x10 PNGs           expected: gray (PIL decode), gray_fit6
  DIR/rgb/{a,b}.png, sub/c.jpg   3 RGB 16x16 images      expected: rgb (PIL decode), rgb_fit8, rgb_fit20
  DIR/mixed/            a grayscale and an RGB PNG
  DIR/alpha/            an RGBA PNG
Expected tensors go to DIR/expected.pt."""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

root = sys.argv[1]
rng = np.random.default_rng(3)
out = {}


def folder(name):
    p = os.path.join(root, name)
    os.makedirs(p, exist_ok=True)
    return p


# CIFAR-10 binary batches: 1 label byte + 3072 image bytes per record.
records = []
for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
    r = rng.integers(0, 256, size=(3, 3073), dtype=np.uint8)
    r[:, 0] = rng.integers(0, 10, size=3)
    r.tofile(os.path.join(folder("cifar"), name + ".bin"))
    if name != "test_batch":
        records.append(r)
train = np.concatenate(records)
out["cifar_images"] = torch.from_numpy(train[:, 1:].reshape(-1, 3, 32, 32).copy())
out["cifar_labels"] = torch.from_numpy(train[:, 0].astype(np.int64))


def smooth(h, w, c):  # images with structure, so resizing has something to do
    y, x = np.mgrid[0:h, 0:w]
    base = [128 + 100 * np.sin(x / 2.0 + k) * np.cos(y / 3.0 - k) for k in range(c)]
    img = np.stack(base, -1) + rng.integers(-20, 20, size=(h, w, c))
    return np.clip(img, 0, 255).astype(np.uint8)


def fit(t, size):  # uint8 NCHW → centre crop to a square → bilinear (antialiased when shrinking)
    h, w = t.shape[2:]
    s = min(h, w)
    t = t[:, :, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s].float()
    r = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=size < s)
    return r.round().clamp(0, 255).to(torch.uint8)


gray = []
for i in range(3):
    Image.fromarray(smooth(10, 12, 1)[:, :, 0], "L").save(os.path.join(folder("gray"), f"g{i}.png"))
for i in range(3):
    gray.append(np.asarray(Image.open(os.path.join(root, "gray", f"g{i}.png")))[None])
out["gray"] = torch.from_numpy(np.stack(gray))
out["gray_fit6"] = fit(out["gray"], 6)

Image.fromarray(smooth(16, 16, 3), "RGB").save(os.path.join(folder("rgb"), "a.png"))
Image.fromarray(smooth(16, 16, 3), "RGB").save(os.path.join(folder("rgb"), "b.png"))
Image.fromarray(smooth(16, 16, 3), "RGB").save(os.path.join(folder("rgb/sub"), "c.jpg"), quality=95)
rgb = [np.asarray(Image.open(os.path.join(root, "rgb", n))) for n in ["a.png", "b.png", "sub/c.jpg"]]
out["rgb"] = torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).contiguous()
out["rgb_fit8"] = fit(out["rgb"], 8)
out["rgb_fit20"] = fit(out["rgb"], 20)

Image.fromarray(smooth(8, 8, 1)[:, :, 0], "L").save(os.path.join(folder("mixed"), "a.png"))
Image.fromarray(smooth(8, 8, 3), "RGB").save(os.path.join(folder("mixed"), "b.png"))
Image.fromarray(np.concatenate([smooth(8, 8, 3), smooth(8, 8, 1)], -1), "RGBA").save(
    os.path.join(folder("alpha"), "a.png"))
torch.save(out, os.path.join(root, "expected.pt"))
