"""improved-diffusion's own GaussianDiffusion.calc_bpd_loop (with _vb_terms_bpd, _prior_bpd,
p_mean_variance for FIXED_SMALL and FIXED_LARGE, losses.normal_kl and
discretized_gaussian_log_likelihood) on random inputs, against tests/reference/likelihood_ref.py —
the NumPy transcription that eval::bits_per_dim is tested against in the suite (tests/test_metrics.cpp).
improved-diffusion takes its coefficients in float32 (_extract_into_tensor's .float()); here that
one helper is replaced by a float64 one, so both sides run in float64. The model is a stand-in
that returns fixed x0 predictions (START_X), and torch.randn_like gives the reference's noise.
Measured 2026-12-08 (improved-diffusion 1bc7bbb): the KL terms to 4e-15, the prior and the MSEs to
7e-15, the decoder term (t = 0) to 3e-9 relative — the conditioning of its CDF difference in a tail
(see the end of this file).
Not part of the suite (improved-diffusion is not on the machine that runs it).

  git clone https://github.com/openai/improved-diffusion /tmp/idiff   # or any copy of it
  /usr/bin/python3 tools/improved_diffusion_check.py /tmp/idiff
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch as th

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "/tmp/idiff")
import improved_diffusion.gaussian_diffusion as gd  # noqa: E402


def extract64(arr, timesteps, broadcast_shape):
    res = th.from_numpy(arr).to(device=timesteps.device)[timesteps].double()
    while len(res.shape) < len(broadcast_shape):
        res = res[..., None]
    return res.expand(broadcast_shape)


gd._extract_into_tensor = extract64
rng = np.random.default_rng(0)
T = 12
betas = gd.get_named_beta_schedule("cosine", T)
x0 = th.from_numpy(rng.integers(0, 256, size=(3, 1, 4, 4)).astype(np.float64) / 127.5 - 1)
x0[0, 0, 0, :2] = th.tensor([-1.0, 1.0], dtype=th.float64)  # the open end bins
noises = [th.from_numpy(rng.normal(size=tuple(x0.shape))) for _ in range(T)]
outputs = [th.from_numpy(rng.normal(size=tuple(x0.shape)) * 0.8) for _ in range(T)]  # the model's x0, clipped by improved-diffusion

inputs = {"betas": th.from_numpy(betas), "x0": x0}
for k in range(T):
    inputs[f"noise{k}"] = noises[k]
    inputs[f"pred{k}"] = outputs[k].clamp(-1, 1)
with tempfile.TemporaryDirectory() as tmp:
    th.save(inputs, os.path.join(tmp, "in.pt"))
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.check_call([sys.executable, os.path.join(here, "..", "tests", "reference", "likelihood_ref.py"),
                           os.path.join(tmp, "in.pt"), os.path.join(tmp, "out.pt")])
    want = th.load(os.path.join(tmp, "out.pt"))

worst_kl = worst_decoder = worst_rest = 0.0
for name, var in (("small", gd.ModelVarType.FIXED_SMALL), ("large", gd.ModelVarType.FIXED_LARGE)):
    diffusion = gd.GaussianDiffusion(betas=betas, model_mean_type=gd.ModelMeanType.START_X, model_var_type=var,
                                     loss_type=gd.LossType.MSE, rescale_timesteps=False)
    it = iter(noises)
    th.randn_like = lambda x: next(it)
    model = lambda x, t, **kw: outputs[T - 1 - int(t[0])]
    got = diffusion.calc_bpd_loop(model, x0, clip_denoised=True)
    d = (got["vb"] - want[f"{name}/vb"]).abs()
    kl, dec = d[:, :-1].max().item(), (d[:, -1] / want[f"{name}/vb"][:, -1].abs()).max().item()
    print(f"{name:5s} KL terms (t = T-1 … 1): max |diff| {kl:.1e}; decoder (t = 0): max relative diff {dec:.1e}")
    worst_kl, worst_decoder = max(worst_kl, kl), max(worst_decoder, dec)
    for key, ref in (("prior_bpd", "prior"), ("xstart_mse", "x0_mse"), ("mse", "eps_mse")):
        e = (got[key] - want[f"{name}/{ref}"]).abs().max().item()
        print(f"{name:5s} {key:10s} max |diff| {e:.1e}")
        worst_rest = max(worst_rest, e)
# The decoder's bin probability is a difference of two tanh-approximated CDFs; where the bin lies
# far in a tail both are ≈ 0 or ≈ 1 and the difference keeps only ulp(1)/Δ of its digits, whichever
# library's tanh computes it: 1e-6 relative is that conditioning, not a difference of formulas.
print(f"worst: KL {worst_kl:.1e}, decoder {worst_decoder:.1e} relative, the rest {worst_rest:.1e}")
sys.exit(0 if worst_kl < 1e-10 and worst_decoder < 1e-6 and worst_rest < 1e-10 else 1)
