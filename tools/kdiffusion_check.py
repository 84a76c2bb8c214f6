"""k-diffusion's own sample_euler_ancestral, sample_dpmpp_2m_sde (both variants) and sample_dpmpp_3m_sde
run on the inputs of tests/reference/solvers_ref.py (its σ lists, exact Gaussian denoiser and noise),
against that reference's results, which the C++ samplers are tested against (tests/test_process.cpp).
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
