"""Independent reader for IDX files (Python's gzip + struct): writes the first 5 images and labels
of a split, and the label counts, as a torch.save'd dict. usage: idx_ref.py DIR SPLIT OUT"""
import gzip
import struct
import sys

import torch

folder, split, out = sys.argv[1:4]
with gzip.open(f"{folder}/{split}-images-idx3-ubyte.gz", "rb") as f:
    magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
    assert magic == 0x803, hex(magic)
    first = f.read(5 * rows * cols)
with gzip.open(f"{folder}/{split}-labels-idx1-ubyte.gz", "rb") as f:
    magic, m = struct.unpack(">II", f.read(8))
    assert magic == 0x801 and m == n
    labels = f.read()
torch.save({
    "shape": torch.tensor([n, rows, cols]),
    "first_images": torch.tensor(list(first), dtype=torch.uint8).reshape(5, rows, cols),
    "first_labels": torch.tensor(list(labels[:5]), dtype=torch.int64),
    "label_counts": torch.bincount(torch.tensor(list(labels), dtype=torch.int64), minlength=10),
}, out)
