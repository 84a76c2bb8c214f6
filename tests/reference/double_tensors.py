"""Reads a casdm model file with torch.load and writes every tensor doubled (torch.save), so the
test sees both directions of the format. usage: double_tensors.py IN OUT"""
import sys

import torch

d = torch.load(sys.argv[1], weights_only=True)
assert isinstance(d, dict), type(d)
assert d["casdm.module"].startswith("casdm::ModelImpl"), d["casdm.module"]
torch.save({k: v * 2 for k, v in d.items() if torch.is_tensor(v)}, sys.argv[2])
