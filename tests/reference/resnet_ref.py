"""ResNet-50 stage outputs (layer1 … layer4) computed by torchvision on random weights with random
batch-norm statistics, and the ResNet feature distance, for the C++ implementation to match.
usage: resnet_ref.py DIR → DIR/resnet50.pt (torchvision names, no fc), DIR/expected.pt:
x, y [2, 3, 64, 64] in [0, 1]; stage.<l> (of normalised x, eval mode); distance (x vs y)."""
import os
import sys

import torch
import torchvision

out_dir = sys.argv[1]
torch.manual_seed(1)
m = torchvision.models.resnet50()
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.uniform_(0.5, 1.5)
            mod.bias.uniform_(-0.1, 0.1)
m.eval()
torch.save({k: v for k, v in m.state_dict().items() if not k.startswith("fc.")}, os.path.join(out_dir, "resnet50.pt"))
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def stages(img):
    h = m.maxpool(m.relu(m.bn1(m.conv1((img - mean) / std))))
    out = []
    for layer in (m.layer1, m.layer2, m.layer3, m.layer4):
        h = layer(h)
        out.append(h)
    return out


x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
exp = {"x": x, "y": y}
with torch.no_grad():
    sx, sy = stages(x), stages(y)
    for l, s in enumerate(sx):
        exp[f"stage.{l}"] = s
    exp["distance"] = sum(((u - v) ** 2).mean(dim=[1, 2, 3]) for u, v in zip(sx, sy)) / 4
torch.save(exp, os.path.join(out_dir, "expected.pt"))
