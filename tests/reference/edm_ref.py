"""Independent float64 reference for casdm's EDM parts, written from Karras et al. 2022 and the
code of NVlabs/edm (training/networks.py EDMPrecond.forward, training/loss.py EDMLoss) and of
k-diffusion (sampling.get_sigmas_karras), transcribed here in torch; not casdm's route (casdm
works in the variance-preserving x_t = x/sqrt(1 + sigma^2)).

The raw network is a stand-in, F(z, c_noise) = sin(3 z) + z/4 (the C++ test's probe network).
Writes the inputs (sigma, x0, noise), D(x; sigma), c_noise, EDM's loss weight and loss, and
k-diffusion's Karras sigmas for T = 1000 and T = 5 (increasing, without the final 0).

usage: python3 edm_ref.py OUT.pt
"""
import sys

import torch

SIGMA_DATA = 0.5
SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0


def karras(n, sigma_min, sigma_max, rho=RHO):
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    min_inv_rho = sigma_min ** (1 / rho)
    max_inv_rho = sigma_max ** (1 / rho)
    return (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho  # decreasing, as k-diffusion


def model(z, c_noise):
    return torch.sin(3 * z) + z / 4


def edm_precond(x, sigma):
    sigma = sigma.reshape(-1, 1, 1, 1)
    c_skip = SIGMA_DATA ** 2 / (sigma ** 2 + SIGMA_DATA ** 2)
    c_out = sigma * SIGMA_DATA / (sigma ** 2 + SIGMA_DATA ** 2).sqrt()
    c_in = 1 / (SIGMA_DATA ** 2 + sigma ** 2).sqrt()
    c_noise = sigma.log() / 4
    F_x = model(c_in * x, c_noise.flatten())
    return c_skip * x + c_out * F_x, c_noise.flatten()


def main():
    torch.manual_seed(0)
    sigma = torch.tensor([0.002, 0.01, 0.3, 1.0, 5.0, 80.0, 150.0], dtype=torch.float64)
    x0 = torch.rand(7, 1, 2, 2, dtype=torch.float64) * 2 - 1
    noise = torch.randn(7, 1, 2, 2, dtype=torch.float64)
    # EDMLoss: y + n, n = randn * sigma; weight = (sigma^2 + sigma_data^2) / (sigma * sigma_data)^2.
    D, c_noise = edm_precond(x0 + noise * sigma.reshape(-1, 1, 1, 1), sigma)
    weight = (sigma ** 2 + SIGMA_DATA ** 2) / (sigma * SIGMA_DATA) ** 2
    loss = weight.reshape(-1, 1, 1, 1) * (D - x0) ** 2
    out = {"sigma": sigma, "x0": x0, "noise": noise, "D": D, "c_noise": c_noise, "weight": weight,
           "loss": loss.mean().reshape(1),
           "karras_1000": karras(1000, SIGMA_MIN, SIGMA_MAX).flip(0).contiguous(),
           "karras_5": karras(5, SIGMA_MIN, SIGMA_MAX).flip(0).contiguous()}
    torch.save(out, sys.argv[1])


if __name__ == "__main__":
    main()
