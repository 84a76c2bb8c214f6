"""Feature statistics, Fréchet distances and Inception Scores computed by numpy/scipy, for the C++
scores to match. usage: scores_ref.py DIR → DIR/expected.pt:
x [600, 48] float32 features (mean ≈ 100), y [700, 48]; mu_x, sigma_x (numpy.mean, numpy.cov in
float64); fid_xy (scipy.linalg.sqrtm, the TTUR/guided-diffusion formula, float64);
probs [1000, 7] softmax rows; is_mean, is_std (improved-gan's formula, 10 splits);
boot_idx [20, 600] resample indices of x, boot_fd [20] (each resample's FD against y's statistics, by
scipy), boot_mean, boot_std (ddof = 1);
kx [400, 16], ky [500, 16] float64 features, kid_ix [7, 150] and kid_iy [7, 150] subset indices, kid
[7] each subset pair's unbiased MMD² under the cubic kernel (a NumPy transcription of torch-fidelity's
kid_features_to_metric), kid_mean, kid_std (numpy.std, ddof = 0, as torch-fidelity)."""
import os
import sys

import numpy as np
import torch
from scipy import linalg

out_dir = sys.argv[1]
rng = np.random.default_rng(5)
a = rng.normal(size=(48, 48)) / 7
x = (rng.normal(size=(600, 48)) @ a + 100).astype(np.float32)
y = (rng.normal(size=(700, 48)) @ (a + rng.normal(size=(48, 48)) / 20) + 100.3).astype(np.float32)


def stats(f):
    f = f.astype(np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def fid(m1, s1, m2, s2):
    covmean = linalg.sqrtm(s1.dot(s2))  # (scipy ≥ 1.16 dropped the disp argument)
    covmean = covmean.real
    d = m1 - m2
    return d.dot(d) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


mx, sx = stats(x)
my, sy = stats(y)
logits = rng.normal(size=(1000, 7)) * 2
probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
scores = []
for part in np.array_split(probs, 10):  # 100 rows each
    py = part.mean(axis=0, keepdims=True)
    scores.append(np.exp(np.mean(np.sum(part * (np.log(part) - np.log(py)), axis=1))))
boot_idx = rng.integers(0, 600, size=(20, 600))
boot_fd = np.array([fid(*stats(x[i]), my, sy) for i in boot_idx])

def mmd2_cubic(f1, f2):
    d, m = f1.shape[1], f1.shape[0]
    k11 = (f1 @ f1.T / d + 1) ** 3
    k22 = (f2 @ f2.T / d + 1) ** 3
    k12 = (f1 @ f2.T / d + 1) ** 3
    a = (k11.sum() - np.diag(k11).sum()) / (m * (m - 1))
    b = (k22.sum() - np.diag(k22).sum()) / (m * (m - 1))
    return a + b - 2 * k12.mean()


kx = rng.normal(size=(400, 16))
ky = rng.normal(size=(500, 16)) * 1.1 + 0.2
kid_ix = np.stack([rng.choice(400, 150, replace=False) for _ in range(7)])
kid_iy = np.stack([rng.choice(500, 150, replace=False) for _ in range(7)])
kid = np.array([mmd2_cubic(kx[i], ky[j]) for i, j in zip(kid_ix, kid_iy)])
t = torch.from_numpy
torch.save({"x": t(x), "y": t(y), "mu_x": t(mx), "sigma_x": t(sx), "fid_xy": torch.tensor(fid(mx, sx, my, sy), dtype=torch.float64),
            "probs": t(probs), "is_mean": torch.tensor(np.mean(scores), dtype=torch.float64),
            "is_std": torch.tensor(np.std(scores), dtype=torch.float64),
            "boot_idx": t(boot_idx.astype(np.int64)), "boot_fd": t(boot_fd),
            "boot_mean": torch.tensor(boot_fd.mean(), dtype=torch.float64),
            "boot_std": torch.tensor(boot_fd.std(ddof=1), dtype=torch.float64),
            "kx": t(kx), "ky": t(ky), "kid_ix": t(kid_ix.astype(np.int64)), "kid_iy": t(kid_iy.astype(np.int64)),
            "kid": t(kid), "kid_mean": torch.tensor(kid.mean(), dtype=torch.float64),
            "kid_std": torch.tensor(kid.std(), dtype=torch.float64)},
           os.path.join(out_dir, "expected.pt"))
