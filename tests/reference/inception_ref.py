"""Inception v3 block outputs computed by torchvision on random weights with random batch-norm
statistics, the Inception feature distance, and the FID variant (pytorch-fid's pooling changes,
written here from its description), for the C++ implementation to match.
usage: inception_ref.py DIR → DIR/inception_v3.pt (torchvision names, no AuxLogits, no fc),
DIR/inception_fid.pt (the same weights plus fc [1008, 2048]), DIR/expected.pt: x, y
[2, 3, 80, 80] in [0, 1]; block.<l> (of 2x−1); distance (x vs y); fid.pool, fid.logits,
fid.spatial (x; the first 7 channels of Mixed_6d's 1×1 branch);
z [1, 3, 96, 112]; zblock.3."""
import os
import sys

import torch
import torch.nn.functional as F
import torchvision
from torchvision.models import inception as tvi

out_dir = sys.argv[1]
torch.manual_seed(2)
m = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
            mod.weight.uniform_(0.5, 1.5)
            mod.bias.uniform_(-0.1, 0.1)
m.eval()
state = {k: v for k, v in m.state_dict().items() if not k.startswith("fc.")}
torch.save(state, os.path.join(out_dir, "inception_v3.pt"))
fc = torch.nn.Linear(2048, 1008)
torch.save(dict(state, **{"fc.weight": fc.weight.detach(), "fc.bias": fc.bias.detach()}),
           os.path.join(out_dir, "inception_fid.pt"))


def blocks(img, net):
    h = net.maxpool1(net.Conv2d_2b_3x3(net.Conv2d_2a_3x3(net.Conv2d_1a_3x3(img))))
    out = [h]
    h = net.maxpool2(net.Conv2d_4a_3x3(net.Conv2d_3b_1x1(h)))
    out.append(h)
    for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
        h = getattr(net, name)(h)
    out.append(h)
    out.append(net.Mixed_7c(net.Mixed_7b(net.Mixed_7a(h))))
    return out


# The FID graph: the pooling branches of A, C and the first E average without the padding; the
# second E max-pools. Same weights, so the blocks' forward methods are swapped in place.
def avg_no_pad(x):
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def a_forward(self, x):
    b5 = self.branch5x5_2(self.branch5x5_1(x))
    bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    return torch.cat([self.branch1x1(x), b5, bd, self.branch_pool(avg_no_pad(x))], 1)


def c_forward(self, x):
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    bd = self.branch7x7dbl_1(x)
    for i in (2, 3, 4, 5):
        bd = getattr(self, f"branch7x7dbl_{i}")(bd)
    return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(avg_no_pad(x))], 1)


def e_forward(pool):
    def forward(self, x):
        b3 = self.branch3x3_1(x)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3),
                          self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd), self.branch_pool(pool(x))], 1)
    return forward


x, y = torch.rand(2, 3, 80, 80), torch.rand(2, 3, 80, 80)
z = torch.rand(1, 3, 96, 112)
exp = {"x": x, "y": y, "z": z}
with torch.no_grad():
    bx, by = blocks(x * 2 - 1, m), blocks(y * 2 - 1, m)
    for l, b in enumerate(bx):
        exp[f"block.{l}"] = b
    exp["distance"] = sum(((u - v) ** 2).mean(dim=[1, 2, 3]) for u, v in zip(bx, by)) / 4
    exp["zblock.3"] = blocks(z * 2 - 1, m)[3]
    for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
        blk = getattr(m, name)
        blk.forward = a_forward.__get__(blk)
    for name in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
        blk = getattr(m, name)
        blk.forward = c_forward.__get__(blk)
    m.Mixed_7b.forward = e_forward(avg_no_pad).__get__(m.Mixed_7b)
    m.Mixed_7c.forward = e_forward(lambda t: F.max_pool2d(t, kernel_size=3, stride=1, padding=1)).__get__(m.Mixed_7c)
    pool = blocks(x * 2 - 1, m)[3].mean(dim=[2, 3])
    h = blocks(x * 2 - 1, m)[1]
    for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c"):
        h = getattr(m, name)(h)
    exp["fid.spatial"] = m.Mixed_6d.branch1x1(h)[:, :7].flatten(1)
    exp["fid.pool"] = pool
    exp["fid.logits"] = fc(pool)
torch.save(exp, os.path.join(out_dir, "expected.pt"))
