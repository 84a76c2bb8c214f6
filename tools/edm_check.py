"""k-diffusion's own EDM parts run on the inputs of tests/reference/edm_ref.py, against that
reference's results, which the C++ EDM denoiser, loss weight and schedule are tested against
(tests/test_models.cpp, [edm]): layers.Denoiser (sigma_data 0.5, its 'karras' weighting: the loss on F's
target, which is EDM's weighted x0 loss) with the same stand-in network, and get_sigmas_karras.
Measured 2026-12-08: D 0, loss 3.1e-15 (relative), Karras sigmas 1.5e-6 relative (k-diffusion's
linspace is float32). Not part of the suite: k-diffusion's layers.py imports dctorch and einops,
stubbed here (Denoiser with scales=1 uses neither).

  pip download k-diffusion==0.1.1.post1 --no-deps -d /tmp/kdpkg
  mkdir -p /tmp/kd && python3 -m zipfile -e /tmp/kdpkg/k_diffusion-0.1.1.post1-py3-none-any.whl /tmp/kd
  /usr/bin/python3 tests/reference/edm_ref.py /tmp/edm.pt
  /usr/bin/python3 tools/edm_check.py /tmp/edm.pt [/tmp/kd]
"""
import sys, types
import torch
for name in ("dctorch", "einops", "torchdiffeq", "torchsde", "tqdm", "tqdm.auto"):
    sys.modules[name] = types.ModuleType(name)
sys.modules["dctorch"].functional = None
sys.modules["einops"].rearrange = sys.modules["einops"].repeat = None
sys.modules["torchdiffeq"].odeint = None
sys.modules["tqdm.auto"].trange = sys.modules["tqdm.auto"].tqdm = None
kd = sys.argv[2] if len(sys.argv) > 2 else "/tmp/kd"
utils = types.ModuleType("kd_utils")
utils.append_dims = lambda x, n: x[(...,) + (None,) * (n - x.ndim)]
sampling = {"utils": utils, "__name__": "kd_sampling"}
exec(compile(open(kd + "/k_diffusion/sampling.py").read().replace("from . import utils", ""), "sampling.py", "exec"), sampling)
layers = {"utils": utils, "sampling": types.SimpleNamespace(**sampling), "__name__": "kd_layers"}
exec(compile(open(kd + "/k_diffusion/layers.py").read().replace("from . import sampling, utils", ""), "layers.py", "exec"), layers)

d = torch.load(sys.argv[1])
inner = lambda z, sigma: torch.sin(3 * z) + z / 4  # edm_ref.py's stand-in F (the time is not used)
den = layers["Denoiser"](inner, sigma_data=0.5)
sigma, x0, noise = d["sigma"], d["x0"], d["noise"]
rel = lambda a, b: float(((a - b).abs() / b.abs().clamp_min(1e-300)).max())
D = den(x0 + noise * sigma.reshape(-1, 1, 1, 1), sigma)
loss = den.loss(x0, noise, sigma).mean()
worst_d, worst_l = rel(D, d["D"]), rel(loss.reshape(1), d["loss"])
k = max(rel(sampling["get_sigmas_karras"](n, 0.002, 80.0)[:-1].flip(0).double(), d[f"karras_{n}"]) for n in (1000, 5))
print(f"D {worst_d:.2g}, loss {worst_l:.2g} (relative), Karras sigmas {k:.2g} relative")
sys.exit(0 if worst_d < 1e-12 and worst_l < 1e-12 and k < 1e-5 else 1)
