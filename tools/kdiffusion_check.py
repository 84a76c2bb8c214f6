"""k-diffusion's own sample_euler_ancestral, sample_dpmpp_2m_sde (both variants) and sample_dpmpp_3m_sde
run on the inputs of tests/reference/solvers_ref.py (its σ lists, exact Gaussian denoiser and noise),
against that reference's results, which the C++ samplers are tested against (tests/test_process.cpp);
then its DiscreteSchedule (quantize=False: sigma_to_t, t_to_sigma) and every σ-space sampler on the
exact, unsnapped σ lists, and sample_euler/sample_heun with EDM's churn (s_churn, s_tmin, s_tmax,
s_noise). Measured 2026-12-07: 4.4e-14, 0 (3e-8 relative for t_to_sigma, float32 there), 1.8e-12, 7.6e-13.
Not part of the suite: k-diffusion's wheel imports torchsde, torchdiffeq and tqdm, stubbed here (the
samplers use none of them when given a noise sampler).

  pip download k-diffusion==0.1.1.post1 --no-deps -d /tmp/kdpkg
  mkdir -p /tmp/kd && python3 -m zipfile -e /tmp/kdpkg/k_diffusion-0.1.1.post1-py3-none-any.whl /tmp/kd
  /usr/bin/python3 tests/reference/solvers_ref.py /tmp/sref.pt
  /usr/bin/python3 tools/kdiffusion_check.py /tmp/sref.pt [/tmp/kd]
"""
import math, sys, types
import numpy as np, torch
for name in ("torchdiffeq", "torchsde", "tqdm", "tqdm.auto"):
    m = types.ModuleType(name); sys.modules[name] = m
sys.modules["torchdiffeq"].odeint = None
sys.modules["tqdm.auto"].trange = lambda n, disable=None: range(n)
sys.modules["tqdm.auto"].tqdm = None
utils = types.ModuleType("kd_utils")
utils.append_dims = lambda x, n: x[(...,) + (None,) * (n - x.ndim)]
kd = sys.argv[2] if len(sys.argv) > 2 else "/tmp/kd"
src = open(kd + "/k_diffusion/sampling.py").read().replace("from . import utils", "")
ns = {"utils": utils, "__name__": "kd_sampling"}
exec(compile(src, "sampling.py", "exec"), ns)
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent / "tests" / "reference"))
import solvers_ref as R
d = torch.load(sys.argv[1])
abar = R.cosine_abar(R.T); sig_all = np.sqrt((1 - abar) / abar)
m, S, xT = d["m"], d["S"], d["xT"]
def model(x, sigma):
    s = float(sigma[0])
    return m + (x - m) @ torch.linalg.inv(S + s ** 2 * torch.eye(4, dtype=torch.float64)).T @ S.T
worst = 0
skipped = []
for solver, fn, kw in (("euler-a", "sample_euler_ancestral", {}), ("dpmpp2m-sde", "sample_dpmpp_2m_sde", {"solver_type": "midpoint"}),
                       ("dpmpp2m-sde-heun", "sample_dpmpp_2m_sde", {"solver_type": "heun"}), ("dpmpp3m-sde", "sample_dpmpp_3m_sde", {})):
    for eta in (1.0, 0.5):
        for n in (1, 2, 10, 20):
            use = R.steps(sig_all, n, "karras")
            sig = torch.tensor(list(sig_all[use][::-1]) + [0.0], dtype=torch.float64)
            key = f"{solver}@{eta:g}/{n}"
            z = d[key + "/z"]; k = [0]
            def noise(s, s_next):
                out = z[k[0]]; k[0] += 1; return out
            x = xT / math.sqrt(abar[use[-1]])
            try:
                out = ns[fn](model, x.clone(), sig, eta=eta, noise_sampler=noise, **kw)
            except UnboundLocalError:  # k-diffusion's (2M)/(3M) SDE cannot take a single step (h unset)
                skipped.append(key); continue
            diff = (out - d[key + "/x0"]).abs().max().item()
            worst = max(worst, diff)
print("k-diffusion 0.1.1.post1 vs solvers_ref.py: max |difference| =", worst, "; not run by k-diffusion:", skipped)

# Between the trained steps: k-diffusion's DiscreteSchedule (quantize=False) against the reference's
# sigma_to_t and t_to_sigma, and its samplers on the exact σ lists (no snapping).
ext = open(kd + "/k_diffusion/external.py").read().replace("from . import sampling, utils", "")
ens = {"sampling": types.SimpleNamespace(append_zero=lambda x: torch.cat([x, x.new_zeros([1])])), "utils": utils,
       "__name__": "kd_external"}
exec(compile(ext, "external.py", "exec"), ens)
sched = ens["DiscreteSchedule"](torch.from_numpy(sig_all), quantize=False)
worst_t = worst_s = worst_x = 0
for key in [k for k in d if k.startswith("exact/") and k.endswith("/sigmas") and "t_frac" not in k]:
    t = sched.sigma_to_t(d[key])
    worst_t = max(worst_t, (t - d[key[:-len("sigmas")] + "t"]).abs().max().item())
t = d["exact/t_frac"]
worst_s = ((sched.t_to_sigma(t).double() / d["exact/t_frac/sigmas"]) - 1).abs().max().item()  # k-diffusion: float32 t
for n in (2, 10, 20):
    for solver, fn, kw, kind in (("euler", "sample_euler", {}, "karras"), ("heun", "sample_heun", {}, "karras"),
                                 ("dpmpp2m", "sample_dpmpp_2m", {}, "logsnr"), ("euler-a", "sample_euler_ancestral", {"eta": 1.0}, "karras"),
                                 ("dpmpp2m-sde", "sample_dpmpp_2m_sde", {"eta": 1.0, "solver_type": "midpoint"}, "karras"),
                                 ("dpmpp2m-sde-heun", "sample_dpmpp_2m_sde", {"eta": 1.0, "solver_type": "heun"}, "karras"),
                                 ("dpmpp3m-sde", "sample_dpmpp_3m_sde", {"eta": 1.0}, "karras")):
        want = d[f"exact/{kind}{n}/sigmas"]
        sig = torch.cat([want.flip(0), torch.zeros(1, dtype=torch.float64)])
        if f"exact/{solver}{n}/z" in d:
            z = d[f"exact/{solver}{n}/z"]; k = [0]
            def noise(s, s_next, z=z, k=k):
                out = z[k[0]]; k[0] += 1; return out
            kw = dict(kw, noise_sampler=noise)
        x = xT * math.sqrt(1 + float(want[-1]) ** 2)
        out = ns[fn](model, x.clone(), sig, **kw)
        worst_x = max(worst_x, (out - d[f"exact/{solver}{n}/x0"]).abs().max().item())
print("DiscreteSchedule(quantize=False): sigma_to_t max |difference|", worst_t, "; t_to_sigma (float32 in k-diffusion) max relative",
      worst_s, "; samplers on exact sigmas max |difference|", worst_x)

# EDM's churn: k-diffusion's sample_euler and sample_heun with s_churn, their torch.randn_like (one
# draw a step, used where γ > 0) replaced by the reference's noise.
amount, t_min, t_max, s_noise = d["churn/settings"].tolist()
worst_c = 0
real_randn_like = torch.randn_like
for solver, fn in (("euler", "sample_euler"), ("heun", "sample_heun")):
    for n in (1, 2, 10, 20):
        use = R.steps(sig_all, n, "karras")
        sig = torch.tensor(list(sig_all[use][::-1]) + [0.0], dtype=torch.float64)
        z = iter(d[f"churn/{solver}{n}/z"])
        torch.randn_like = lambda x: next(z)
        try:
            out = ns[fn](model, xT / math.sqrt(abar[use[-1]]), sig, s_churn=amount, s_tmin=t_min, s_tmax=t_max, s_noise=s_noise)
        finally:
            torch.randn_like = real_randn_like
        worst_c = max(worst_c, (out - d[f"churn/{solver}{n}/x0"]).abs().max().item())
print("churn (sample_euler, sample_heun with s_churn) max |difference|", worst_c)
