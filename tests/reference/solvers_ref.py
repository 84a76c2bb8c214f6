"""Independent float64 reference for casdm's ODE samplers (DPM-Solver++(2M), Karras Euler and Heun),
its stochastic ones (Euler ancestral, DPM-Solver++(2M) SDE in both variants, (3M) SDE) and their
σ-based spacings, in numpy. Written in k-diffusion's variance-exploding form (x = x0 + σ·ε,
σ = √((1−ᾱ)/ᾱ), t = −log σ), not in casdm's x_t-space: the same maps by another route.

The denoiser is exact: data x0 ~ N(m, S) (4 dimensions), so E[x0 | x] at noise σ is
m + S (S + σ² I)⁻¹ (x − m) in the VE form. Writes, for each solver and step count, the result of a
whole run from the given starting points, and the run's steps (indices of the T = 1000 cosine process).

usage: python3 solvers_ref.py OUT.pt
"""
import math
import sys

import numpy as np
import torch

T = 1000
SIGMA_MAX = 80.0


def cosine_abar(T):
    f = lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2
    betas = [min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)]
    return np.cumprod(1 - np.array(betas, dtype=np.float64))


def steps(sig, n, kind):
    lo, hi = sig[0], min(sig[-1], SIGMA_MAX)
    f = np.linspace(0.0, 1.0, n) if n > 1 else np.ones(1)  # one step: from σ_max
    if kind == "karras":
        rho = 7.0
        want = (lo ** (1 / rho) + f * (hi ** (1 / rho) - lo ** (1 / rho))) ** rho
    else:
        want = np.exp(np.log(lo) + f * (np.log(hi) - np.log(lo)))
    idx = [int(np.argmin(np.abs(np.log(sig) - math.log(w)))) for w in want]
    for k in range(1, n):
        idx[k] = max(idx[k], idx[k - 1] + 1)
    for k in range(n - 1, -1, -1):
        idx[k] = min(idx[k], len(sig) - n + k)
    return idx


def main(out):
    abar = cosine_abar(T)
    sig_all = np.sqrt((1 - abar) / abar)
    rng = np.random.default_rng(77)
    m = np.array([0.3, -0.5, 0.0, 0.6])
    q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    S = q @ np.diag([1.0, 0.25, 0.09, 0.01]) @ q.T
    xT = rng.standard_normal((6, 4))  # six starting points, variance-preserving x_T

    def denoise(x_ve, sigma):  # rows of x in VE form
        return m + (x_ve - m) @ np.linalg.inv(S + sigma ** 2 * np.eye(4)).T @ S.T

    d = {"m": torch.from_numpy(m), "S": torch.from_numpy(S), "xT": torch.from_numpy(xT)}
    for solver, kind in (("dpmpp2m", "logsnr"), ("euler", "karras"), ("heun", "karras")):
        for n in (1, 2, 10, 20):
            use = steps(sig_all, n, kind)
            sig = list(sig_all[use][::-1]) + [0.0]  # high to low, then 0
            x = xT / math.sqrt(abar[use[-1]])  # VE start
            old = None
            for i in range(n):
                s, s_next = sig[i], sig[i + 1]
                den = denoise(x, s)
                if solver == "dpmpp2m":
                    if s_next == 0:
                        x = den
                    else:
                        t, t_next = -math.log(s), -math.log(s_next)
                        h = t_next - t
                        if old is None:
                            D = den
                        else:
                            r = h_last / h
                            D = (1 + 1 / (2 * r)) * den - (1 / (2 * r)) * old
                        x = (s_next / s) * x - math.expm1(-h) * D
                        h_last = h
                    old = den
                else:
                    dx = (x - den) / s
                    x_e = x + (s_next - s) * dx
                    if solver == "heun" and s_next != 0:
                        dx2 = (x_e - denoise(x_e, s_next)) / s_next
                        x = x + (s_next - s) * (dx + dx2) / 2
                    else:
                        x = x_e
            d[f"{solver}{n}/use"] = torch.tensor(use, dtype=torch.int64)
            d[f"{solver}{n}/x0"] = torch.from_numpy(x)  # σ = 0: VE and VP agree
    # The stochastic solvers, fed the noise saved beside them (z[k]: the step from σ_k), with η = 1
    # and η = 1/2: each step an exponential integrator in λ = −log σ with a share of the noise kept.
    for solver in ("euler-a", "dpmpp2m-sde", "dpmpp2m-sde-heun", "dpmpp3m-sde"):
        for eta in (1.0, 0.5):
            for n in (1, 2, 10, 20):
                use = steps(sig_all, n, "karras")
                sig = list(sig_all[use][::-1]) + [0.0]
                z = rng.standard_normal((n, 6, 4))
                x = xT / math.sqrt(abar[use[-1]])
                past = []  # (x̂0, h) of the steps before, newest first
                for k in range(n):
                    s, s_next = sig[k], sig[k + 1]
                    den = denoise(x, s)
                    if s_next == 0:
                        x = den
                        break
                    if solver == "euler-a":
                        # The DDPM posterior's noise share η of σ', the rest of the way deterministic.
                        var_up = min(s_next ** 2, eta ** 2 * s_next ** 2 * (s ** 2 - s_next ** 2) / s ** 2)
                        s_down = math.sqrt(s_next ** 2 - var_up)
                        x = den + (s_down / s) * (x - den) + math.sqrt(var_up) * z[k]
                    else:
                        h = math.log(s) - math.log(s_next)
                        g = (1 + eta) * h  # the step of the data term's integrating factor
                        base = math.exp(-g) * x + (1 - math.exp(-g)) * den
                        if solver.startswith("dpmpp2m") and past:
                            slope = (den - past[0][0]) * (h / past[0][1])
                            w = 0.5 * (1 - math.exp(-g)) if solver == "dpmpp2m-sde" else 1 - (1 - math.exp(-g)) / g
                            base = base + w * slope
                        elif solver == "dpmpp3m-sde" and past:
                            phi2 = 1 - (1 - math.exp(-g)) / g
                            phi3 = phi2 / g - 0.5
                            q0 = past[0][1] / h
                            first = (den - past[0][0]) / q0
                            if len(past) > 1:
                                q1 = past[1][1] / h
                                older = (past[0][0] - past[1][0]) / q1
                                curv = (first - older) / (q0 + q1)
                                base = base + phi2 * (first + curv * q0) - phi3 * curv
                            else:
                                base = base + phi2 * first
                        x = base + s_next * math.sqrt(1 - math.exp(-2 * eta * h)) * z[k]
                        past = [(den, h)] + past[:1]
                key = f"{solver}@{eta:g}/{n}"
                d[key + "/z"] = torch.from_numpy(z)
                d[key + "/x0"] = torch.from_numpy(x)
    torch.save(d, out)


if __name__ == "__main__":
    main(sys.argv[1])
