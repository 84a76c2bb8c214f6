#!/usr/bin/python3
"""Writes the small seed corpus of each fuzz target under fuzz/corpus/ (committed; rerun to renew)."""
import gzip
import io
import json
import pathlib
import struct
import zlib

import torch
from PIL import Image

root = pathlib.Path(__file__).resolve().parent / "corpus"

idx = struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">III", 2, 3, 3) + bytes(range(18))
(root / "idx" / "images-2x3x3").write_bytes(idx)
(root / "idx" / "labels-4").write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 4) + bytes([0, 1, 2, 9]))
(root / "idx" / "images-2x3x3.gz").write_bytes(gzip.compress(idx, mtime=0))

(root / "cifar10" / "one-record").write_bytes(bytes([3]) + bytes(i % 256 for i in range(3 * 32 * 32)))

for fmt, name in [("PNG", "rgb.png"), ("JPEG", "rgb.jpg"), ("BMP", "rgb.bmp")]:
    b = io.BytesIO()
    Image.frombytes("RGB", (6, 5), bytes(i * 7 % 256 for i in range(6 * 5 * 3))).save(b, fmt)
    (root / "image" / name).write_bytes(b.getvalue())
b = io.BytesIO()
Image.frombytes("L", (4, 4), bytes(range(0, 256, 16))).save(b, "PNG")
(root / "image" / "grey.png").write_bytes(b.getvalue())

options = {"image_size": "8", "channels": "1", "diffusion_steps": "20", "feature_size": "0", "feature_weights": "",
           "net.model_channels": "8", "net.channel_mult": "1,2", "net.num_res_blocks": "1",
           "net.attention_resolutions": "4", "net.num_heads": "2", "net.dropout": "0",
           "net.use_scale_shift_norm": "true", "net.norm_groups": "8", "net.resample": "true",
           "net.middle_attention": "true"}
(root / "options" / "tiny").write_text("".join(f"{k}={v}\n" for k, v in options.items()))
cascaded = dict(options, **{k.replace("net.", "phi_net."): v for k, v in options.items() if k.startswith("net.")})
(root / "options" / "cascaded").write_text("".join(f"{k}={v}\n" for k, v in cascaded.items()))

# A model file and a checkpoint-like file as Python writes them (casdm reads both).
w = torch.arange(6, dtype=torch.float32).reshape(2, 3)
model = {"casdm.format": "casdm-denoiser-1", "casdm.denoiser": "fuzz", "theta.w": w}
model.update({"casdm.options." + k: v for k, v in options.items()})
model["casdm.crc32.theta.w"] = format(zlib.crc32(w.numpy().tobytes()), "08x")  # as casdm writes it
torch.save(model, root / "checkpoint" / "model.pt")
ckpt = {"casdm.format": "casdm-checkpoint-1", "casdm.model": "fuzz", "casdm.step": "3", "casdm.ema.0.rate": "0.9",
        "model.theta.w": w, "ema.0.theta.w": w * 2, "rng.cpu": torch.zeros(8, dtype=torch.uint8)}
ckpt.update({"casdm.options." + k: v for k, v in options.items()})
torch.save(ckpt, root / "checkpoint" / "checkpoint.pt")
# The same in format 2: identities and one JSON settings document (train/checkpoint.hpp).
net = {"model_channels": 8, "channel_mult": [1, 2], "num_res_blocks": 1, "attention_resolutions": [4], "num_heads": 2,
       "dropout": 0.0, "use_scale_shift_norm": True, "norm_groups": 8, "resample": True, "middle_attention": True}
denoiser = {"image_size": 8, "channels": 1, "diffusion_steps": 20, "net": net}
model2 = {"casdm.format": "casdm-denoiser-2", "casdm.denoiser": "cosine | eps-only(unet)", "theta.w": w,
          "casdm.config": json.dumps({"denoiser": denoiser, "run": {"preset": "fuzz"}})}
model2["casdm.crc32.theta.w"] = model["casdm.crc32.theta.w"]
torch.save(model2, root / "checkpoint" / "model2.pt")
config = {"denoiser": denoiser, "objective": {"feature_size": 0, "feature_weights": "", "loss_weights": {"eps": 1.0}},
          "trainer": {"lr": 0.001, "weight_decay": 0.0, "grad_clip": 0.0, "micro_batch": 0, "ema_rates": [0.9],
                      "skipped_steps": 0}, "run": {"preset": "fuzz"}}
ckpt2 = {"casdm.format": "casdm-checkpoint-2", "casdm.identity": "cosine | eps-only(unet) | eps:1",
         "casdm.denoiser": "cosine | eps-only(unet)", "casdm.step": "3", "casdm.config": json.dumps(config),
         "model.theta.w": w, "ema.0.theta.w": w * 2, "rng.cpu": torch.zeros(8, dtype=torch.uint8)}
torch.save(ckpt2, root / "checkpoint" / "checkpoint2.pt")
for p in sorted(root.rglob("*")):
    if p.is_file():
        print(p.relative_to(root), p.stat().st_size)
