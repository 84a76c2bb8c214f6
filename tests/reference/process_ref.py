"""Independent float64 reference for casdm's process math, in numpy, following improved-diffusion's
gaussian_diffusion.py / respace.py formulas. Writes a torch.save'd dict of float64/int64 tensors.

usage: python3 process_ref.py OUT.pt
"""
import math
import sys

import numpy as np
import torch


def linear_betas(T):
    scale = 1000 / T
    return np.linspace(scale * 0.0001, scale * 0.02, T, dtype=np.float64)


def cosine_betas(T):
    def abar(s):
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2
    return np.array([min(1 - abar((i + 1) / T) / abar(i / T), 0.999) for i in range(T)], dtype=np.float64)


def space_timesteps(T, spec):
    if spec.startswith("ddim"):
        want = int(spec[4:])
        for stride in range(1, T):
            if len(range(0, T, stride)) == want:
                return sorted(set(range(0, T, stride)))
        raise ValueError(spec)
    counts = [int(c) for c in spec.split(",")]
    size_per, extra = T // len(counts), T % len(counts)
    start, steps = 0, []
    for i, count in enumerate(counts):
        size = size_per + (1 if i < extra else 0)
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        cur = 0.0
        for _ in range(count):
            steps.append(start + round(cur))
            cur += stride
        start += size
    return sorted(set(steps))


class Proc:
    def __init__(self, betas, tmap=None):
        self.betas = b = np.asarray(betas, dtype=np.float64)
        self.T = len(b)
        self.tmap = np.arange(self.T) if tmap is None else np.asarray(tmap)
        a = 1.0 - b
        self.acp = np.cumprod(a)
        self.acp_prev = np.append(1.0, self.acp[:-1])
        self.pvar = b * (1.0 - self.acp_prev) / (1.0 - self.acp)
        self.plogvar = np.log(np.append(self.pvar[1], self.pvar[1:]))
        self.large_logvar = np.log(np.append(self.pvar[1], b[1:]))
        self.c1 = b * np.sqrt(self.acp_prev) / (1.0 - self.acp)
        self.c2 = (1.0 - self.acp_prev) * np.sqrt(a) / (1.0 - self.acp)

    def respace(self, use):
        last, nb, tm = 1.0, [], []
        for i, ac in enumerate(self.acp):
            if i in use:
                nb.append(1 - ac / last)
                last = ac
                tm.append(self.tmap[i])
        return Proc(nb, tm)

    @staticmethod
    def g(arr, t):
        return arr[t].reshape(-1, 1, 1, 1)

    def q_sample(self, x0, t, n):
        return np.sqrt(self.g(self.acp, t)) * x0 + np.sqrt(1 - self.g(self.acp, t)) * n

    def post_mean(self, x0, xt, t):
        return self.g(self.c1, t) * x0 + self.g(self.c2, t) * xt

    def x0_from_eps(self, xt, t, eps):
        return np.sqrt(1 / self.g(self.acp, t)) * xt - np.sqrt(1 / self.g(self.acp, t) - 1) * eps

    def eps_from_x0(self, xt, t, x0):
        return (np.sqrt(1 / self.g(self.acp, t)) * xt - x0) / np.sqrt(1 / self.g(self.acp, t) - 1)

    def v(self, x0, t, n):  # Salimans & Ho 2022: v = α ε − σ x0
        return np.sqrt(self.g(self.acp, t)) * n - np.sqrt(1 - self.g(self.acp, t)) * x0

    def x0_from_v(self, xt, t, v):
        return np.sqrt(self.g(self.acp, t)) * xt - np.sqrt(1 - self.g(self.acp, t)) * v

    def eps_from_v(self, xt, t, v):
        return np.sqrt(1 - self.g(self.acp, t)) * xt + np.sqrt(self.g(self.acp, t)) * v

    def ddim(self, xt, t, x0, eps, eta, z):
        ab, abp = self.g(self.acp, t), self.g(self.acp_prev, t)
        sigma = eta * np.sqrt((1 - abp) / (1 - ab)) * np.sqrt(1 - ab / abp)
        mean = np.sqrt(abp) * x0 + np.sqrt(1 - abp - sigma ** 2) * eps
        mask = (t != 0).astype(np.float64).reshape(-1, 1, 1, 1)
        return mean + mask * sigma * z

    def ancestral(self, xt, t, x0, z, logvar):
        mask = (t != 0).astype(np.float64).reshape(-1, 1, 1, 1)
        return self.post_mean(x0, xt, t) + mask * np.exp(0.5 * self.g(logvar, t)) * z


def main(out):
    rng = np.random.default_rng(1234)
    d = {}
    shape = (4, 3, 5, 5)
    x0 = rng.uniform(-1, 1, shape)
    noise = rng.standard_normal(shape)
    eps = rng.standard_normal(shape)
    z = rng.standard_normal(shape)
    for k, v in dict(x0=x0, noise=noise, eps=eps, z=z).items():
        d["in/" + k] = torch.from_numpy(v)

    def record(prefix, p):
        d[prefix + "/betas"] = torch.from_numpy(p.betas)
        d[prefix + "/alphas_cumprod"] = torch.from_numpy(p.acp)
        d[prefix + "/alphas_cumprod_prev"] = torch.from_numpy(p.acp_prev)
        d[prefix + "/posterior_variance"] = torch.from_numpy(p.pvar)
        d[prefix + "/posterior_log_variance_clipped"] = torch.from_numpy(p.plogvar)
        d[prefix + "/posterior_mean_coef1"] = torch.from_numpy(p.c1)
        d[prefix + "/posterior_mean_coef2"] = torch.from_numpy(p.c2)
        d[prefix + "/timestep_map"] = torch.from_numpy(np.asarray(p.tmap, dtype=np.int64))
        t = np.array([0, 1, p.T // 2, p.T - 1], dtype=np.int64)
        d[prefix + "/t"] = torch.from_numpy(t)
        xt = p.q_sample(x0, t, noise)
        d[prefix + "/q_sample"] = torch.from_numpy(xt)
        d[prefix + "/posterior_mean"] = torch.from_numpy(p.post_mean(x0, xt, t))
        d[prefix + "/x0_from_eps"] = torch.from_numpy(p.x0_from_eps(xt, t, eps))
        d[prefix + "/eps_from_x0"] = torch.from_numpy(p.eps_from_x0(xt, t, x0))
        d[prefix + "/v"] = torch.from_numpy(p.v(x0, t, noise))
        d[prefix + "/x0_from_v"] = torch.from_numpy(p.x0_from_v(xt, t, eps))
        d[prefix + "/eps_from_v"] = torch.from_numpy(p.eps_from_v(xt, t, eps))
        d[prefix + "/snr"] = torch.from_numpy(p.acp / (1 - p.acp))
        d[prefix + "/ddim_eta0"] = torch.from_numpy(p.ddim(xt, t, x0, eps, 0.0, z))
        d[prefix + "/ddim_eta05"] = torch.from_numpy(p.ddim(xt, t, x0, eps, 0.5, z))
        d[prefix + "/ancestral_small"] = torch.from_numpy(p.ancestral(xt, t, x0, z, p.plogvar))
        d[prefix + "/ancestral_large"] = torch.from_numpy(p.ancestral(xt, t, x0, z, p.large_logvar))

    for name, fn in (("linear", linear_betas), ("cosine", cosine_betas)):
        for T in (1000, 4000):
            base = Proc(fn(T))
            record(f"{name}_{T}", base)
            for spec in ("ddim100", "ddim10", "250", "10,20,30"):
                use = space_timesteps(T, spec)
                d[f"{name}_{T}@{spec}/use"] = torch.tensor(use, dtype=torch.int64)
                record(f"{name}_{T}@{spec}", base.respace(set(use)))
    torch.save(d, out)


if __name__ == "__main__":
    main(sys.argv[1])
