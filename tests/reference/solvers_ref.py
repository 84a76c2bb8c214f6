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
CHURN = (4.0, 0.05, 10.0, 1.007)  # S_churn, S_tmin, S_tmax, S_noise


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


def targets(sig, n, kind):
    """The σ the spacing aims at, ascending, before snapping (steps() snaps them)."""
    lo, hi = sig[0], min(sig[-1], SIGMA_MAX)
    f = np.linspace(0.0, 1.0, n) if n > 1 else np.ones(1)
    if kind == "karras":
        rho = 7.0
        want = (lo ** (1 / rho) + f * (hi ** (1 / rho) - lo ** (1 / rho))) ** rho
    else:
        want = np.exp(np.log(lo) + f * (np.log(hi) - np.log(lo)))
    want[0], want[-1] = (lo, hi) if n > 1 else (hi, hi)
    return want


def sigma_to_t(sig, s):
    """k-diffusion's DiscreteSchedule.sigma_to_t with quantize=False, for one σ."""
    log_sig = np.log(sig)
    ls = math.log(s)
    low = min(int(np.argmax(np.cumsum(ls - log_sig >= 0))), len(sig) - 2)
    w = min(max((log_sig[low] - ls) / (log_sig[low] - log_sig[low + 1]), 0.0), 1.0)
    return (1 - w) * low + w * (low + 1)


def t_to_sigma(sig, t):
    """k-diffusion's DiscreteSchedule.t_to_sigma: log σ linear between the neighbouring steps."""
    lo, hi = math.floor(t), math.ceil(t)
    w = t - lo
    return math.exp((1 - w) * math.log(sig[lo]) + w * math.log(sig[hi]))


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

    def ode_run(solver, sig, x):  # sig: high to low, then 0; x in VE form at sig[0]
        old = None
        for i in range(len(sig) - 1):
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
        return x

    # The stochastic solvers, fed the noise saved beside them (z[k]: the step from σ_k): each step an
    # exponential integrator in λ = −log σ with a share η of the noise kept.
    def sde_run(solver, eta, sig, z, x):
        past = []  # (x̂0, h) of the steps before, newest first
        for k in range(len(sig) - 1):
            s, s_next = sig[k], sig[k + 1]
            den = denoise(x, s)
            if s_next == 0:
                return den
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
        return x

    for solver, kind in (("dpmpp2m", "logsnr"), ("euler", "karras"), ("heun", "karras")):
        for n in (1, 2, 10, 20):
            use = steps(sig_all, n, kind)
            sig = list(sig_all[use][::-1]) + [0.0]  # high to low, then 0
            d[f"{solver}{n}/use"] = torch.tensor(use, dtype=torch.int64)
            d[f"{solver}{n}/x0"] = torch.from_numpy(ode_run(solver, sig, xT / math.sqrt(abar[use[-1]])))  # σ = 0: VE and VP agree
    for solver in ("euler-a", "dpmpp2m-sde", "dpmpp2m-sde-heun", "dpmpp3m-sde"):
        for eta in (1.0, 0.5):
            for n in (1, 2, 10, 20):
                use = steps(sig_all, n, "karras")
                sig = list(sig_all[use][::-1]) + [0.0]
                z = rng.standard_normal((n, 6, 4))
                key = f"{solver}@{eta:g}/{n}"
                d[key + "/z"] = torch.from_numpy(z)
                d[key + "/x0"] = torch.from_numpy(sde_run(solver, eta, sig, z, xT / math.sqrt(abar[use[-1]])))

    # Between the trained steps (k-diffusion's DiscreteSchedule, quantize=False): the σ targets
    # themselves, the step each stands at (interpolated in log σ), and the runs on them.
    for kind in ("karras", "logsnr"):
        for n in (2, 10, 20):
            want = targets(sig_all, n, kind)
            d[f"exact/{kind}{n}/sigmas"] = torch.from_numpy(want)
            d[f"exact/{kind}{n}/t"] = torch.tensor([sigma_to_t(sig_all, w) for w in want], dtype=torch.float64)
            sig = list(want[::-1]) + [0.0]
            x = xT * math.sqrt(1 + want[-1] ** 2)
            for solver in (("dpmpp2m",) if kind == "logsnr" else ("euler", "heun")):
                d[f"exact/{solver}{n}/x0"] = torch.from_numpy(ode_run(solver, sig, x))
            if kind == "karras":
                for solver in ("euler-a", "dpmpp2m-sde", "dpmpp2m-sde-heun", "dpmpp3m-sde"):
                    z = rng.standard_normal((n, 6, 4))
                    d[f"exact/{solver}{n}/z"] = torch.from_numpy(z)
                    d[f"exact/{solver}{n}/x0"] = torch.from_numpy(sde_run(solver, 1.0, sig, z, x))
    # EDM's churn (Algorithm 2, k-diffusion's s_churn) on Euler and Heun, Karras steps of the process:
    # γ = min(amount/N, √2 − 1) where t_min ≤ σ ≤ t_max, noise up to σ̂ = (1 + γ)σ, the step from σ̂.
    amount, t_min, t_max, s_noise = CHURN
    d["churn/settings"] = torch.tensor(CHURN, dtype=torch.float64)
    for solver in ("euler", "heun"):
        for n in (1, 2, 10, 20):
            use = steps(sig_all, n, "karras")
            sig = list(sig_all[use][::-1]) + [0.0]
            z = rng.standard_normal((n, 6, 4))
            x = xT / math.sqrt(abar[use[-1]])
            for i in range(n):
                s, s_next = sig[i], sig[i + 1]
                gamma = min(amount / n, 2 ** 0.5 - 1) if t_min <= s <= t_max else 0.0
                s_hat = s * (1 + gamma)
                if gamma > 0:
                    x = x + z[i] * s_noise * math.sqrt(s_hat ** 2 - s ** 2)
                den = denoise(x, s_hat)
                dx = (x - den) / s_hat
                if solver == "heun" and s_next != 0:
                    x_e = x + (s_next - s_hat) * dx
                    dx2 = (x_e - denoise(x_e, s_next)) / s_next
                    x = x + (s_next - s_hat) * (dx + dx2) / 2
                else:
                    x = x + (s_next - s_hat) * dx
            d[f"churn/{solver}{n}/z"] = torch.from_numpy(z)
            d[f"churn/{solver}{n}/x0"] = torch.from_numpy(x)
    t_frac = np.array([0.0, 0.5, 3.25, 17.9, 499.99, 998.5, 999.0])
    d["exact/t_frac"] = torch.from_numpy(t_frac)
    d["exact/t_frac/sigmas"] = torch.tensor([t_to_sigma(sig_all, t) for t in t_frac], dtype=torch.float64)
    torch.save(d, out)


if __name__ == "__main__":
    main(sys.argv[1])
