"""improved-diffusion's bound in bits/dim (gaussian_diffusion.py's _vb_terms_bpd, _prior_bpd and
calc_bpd_loop; losses.py's normal_kl and discretized_gaussian_log_likelihood), transcribed in NumPy
float64, for casdm's eval::bits_per_dim to match on the same inputs.
usage: likelihood_ref.py IN.pt OUT.pt. IN: betas [T], x0 [N, ...] (8-bit images in [-1, 1]),
noise<k> and pred<k> for k = 0 … T − 1 (step t = T − 1 − k: the noise drawn and the model's clipped
x̂0 there). OUT, for each variance v in small, large: v/vb [N, T], v/x0_mse, v/eps_mse [N, T],
v/prior [N], v/total [N]."""
import math
import sys

import numpy as np
import torch

d = {k: v.numpy() for k, v in torch.load(sys.argv[1]).items()}
betas = d["betas"]
T = len(betas)
alphas = 1.0 - betas
abar = np.cumprod(alphas)
abar_prev = np.append(1.0, abar[:-1])
post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
post_log_var_clipped = np.log(np.append(post_var[1], post_var[1:]))
coef1 = betas * np.sqrt(abar_prev) / (1.0 - abar)
coef2 = (1.0 - abar_prev) * np.sqrt(alphas) / (1.0 - abar)
large_log_var = np.log(np.append(post_var[1], betas[1:]))


def mean_flat(x):
    return x.reshape(x.shape[0], -1).mean(axis=1)


def normal_kl(m1, lv1, m2, lv2):
    return 0.5 * (-1.0 + lv2 - lv1 + np.exp(lv1 - lv2) + (m1 - m2) ** 2 * np.exp(-lv2))


def cdf(x):
    return 0.5 * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def disc_ll(x, means, log_scales):
    c = x - means
    inv = np.exp(-log_scales)
    cdf_plus = cdf(inv * (c + 1.0 / 255.0))
    cdf_min = cdf(inv * (c - 1.0 / 255.0))
    log_cdf_plus = np.log(np.maximum(cdf_plus, 1e-12))
    log_one_minus = np.log(np.maximum(1.0 - cdf_min, 1e-12))
    log_delta = np.log(np.maximum(cdf_plus - cdf_min, 1e-12))
    return np.where(x < -0.999, log_cdf_plus, np.where(x > 0.999, log_one_minus, log_delta))


x0 = d["x0"]
out = {}
for v, model_lv_table in (("small", post_log_var_clipped), ("large", large_log_var)):
    vb, x0_mse, eps_mse = [], [], []
    for k in range(T):
        t = T - 1 - k
        noise, pred = d[f"noise{k}"], d[f"pred{k}"]
        x_t = math.sqrt(abar[t]) * x0 + math.sqrt(1.0 - abar[t]) * noise
        true_mean = coef1[t] * x0 + coef2[t] * x_t
        model_mean = coef1[t] * pred + coef2[t] * x_t
        lv = np.full_like(x0, model_lv_table[t])
        if t == 0:
            term = -mean_flat(disc_ll(x0, model_mean, 0.5 * lv)) / math.log(2.0)
        else:
            term = mean_flat(normal_kl(true_mean, np.full_like(x0, post_log_var_clipped[t]), model_mean, lv)) / math.log(2.0)
        vb.append(term)
        x0_mse.append(mean_flat((pred - x0) ** 2))
        eps = (math.sqrt(1.0 / abar[t]) * x_t - pred) / math.sqrt(1.0 / abar[t] - 1.0)
        eps_mse.append(mean_flat((eps - noise) ** 2))
    prior = mean_flat(normal_kl(math.sqrt(abar[-1]) * x0, np.full_like(x0, math.log(1.0 - abar[-1])), 0.0, 0.0)) / math.log(2.0)
    vb = np.stack(vb, axis=1)
    out[f"{v}/vb"] = torch.from_numpy(vb)
    out[f"{v}/x0_mse"] = torch.from_numpy(np.stack(x0_mse, axis=1))
    out[f"{v}/eps_mse"] = torch.from_numpy(np.stack(eps_mse, axis=1))
    out[f"{v}/prior"] = torch.from_numpy(prior)
    out[f"{v}/total"] = torch.from_numpy(vb.sum(axis=1) + prior)
torch.save(out, sys.argv[2])
