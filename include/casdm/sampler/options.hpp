#pragma once
// Runtime choices of one sampling run; unset fields take the sampler type's defaults.
#include <ATen/core/Tensor.h>
#include <torch/arg.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>

namespace casdm {

/// EDM's churn (Karras et al. 2022, Algorithm 2): before each step whose σ lies in [t_min, t_max], σ is
/// raised to σ̂ = (1 + γ)·σ, γ = min(amount/N, √2 − 1) for a run of N steps, by adding noise of
/// standard deviation noise·√(σ̂² − σ²); the step then starts from σ̂. amount 0: none. Euler and Heun
/// take it (k-diffusion's s_churn, s_tmin, s_tmax, s_noise).
struct Churn {
  double amount = 0, t_min = 0, t_max = std::numeric_limits<double>::infinity(), noise = 1;
};

/// One step of a sampling run, as SampleOptions::on_step sees it (after the step).
struct SampleStep {
  int64_t step = 0;   // steps done: 1 … steps
  int64_t steps = 0;  // steps of the run
  int64_t t = 0;      // the step's timestep on the training process (0 … T − 1)
  double sigma = 0;   // its noise level σ = √((1 − ᾱ_t)/ᾱ_t)
  const at::Tensor& x;   // the images after the step (x at the next timestep; the result after the last)
  const at::Tensor& x0;  // the step's estimate x̂0 (its first network evaluation; mixed, clipped as asked)
};

struct SampleOptions {
  /// Number of (respaced) steps; 0 means the sampler's default.
  TORCH_ARG(int64_t, steps) = 0;
  /// DDIM η (0: deterministic DDIM, 1: DDPM-like), or the stochastic σ-space samplers' (sampler/sde.hpp:
  /// 0 their ODE step, 1 their default); samplers without one (ancestral, the ODE solvers) refuse it.
  TORCH_ARG(std::optional<double>, eta) = std::nullopt;
  /// The standard normal noise a stochastic σ-space sampler adds at its step from σ to σ_next (the
  /// churn: from σ up to σ̂), shaped like x (k-diffusion's noise_sampler: a test's fixed noise, a
  /// Brownian tree); empty: at::randn_like.
  TORCH_ARG(std::function<at::Tensor(const at::Tensor& x, double sigma, double sigma_next)>, step_noise) = nullptr;
  /// The σ-spaced samplers (Euler, Heun, DPM-Solver++ and the stochastic ones) at their spacing's exact
  /// σ, the network seeing the training step interpolated in log σ between the two nearest (k-diffusion's
  /// quantize=False; Process::at_sigmas). Off (the default, the paper's rows): each σ snapped to the
  /// nearest trained step. Samplers on trained steps (DDIM, ancestral) refuse it.
  TORCH_ARG(bool, exact_sigmas) = false;
  /// EDM's churn for Euler and Heun (above); the other samplers refuse an amount above 0.
  TORCH_ARG(Churn, churn) = {};
  /// Clip x0 predictions to [−1, 1] at every step and re-derive ε from the clipped x0
  /// (improved-diffusion's clip_denoised). Off gives the raw predictions.
  TORCH_ARG(bool, clip_denoised) = true;
  /// Starting noise x_T; undefined means fresh N(0, I) from the default generator.
  TORCH_ARG(at::Tensor, noise) = at::Tensor{};
  /// Class-conditional models: one class index in [0, K) per image (int64 [n]); undefined draws
  /// "no label" (the unconditional model that label dropout trained).
  TORCH_ARG(at::Tensor, labels) = at::Tensor{};
  /// Classifier-free guidance scale w ≥ 0 (Ho & Salimans 2022), applied to the (mixed) estimate:
  /// x̂0 = (1+w)·x̂0(y) − w·x̂0(∅), ε̂ likewise; 0 is the plain conditional model. Needs labels.
  TORCH_ARG(double, guidance) = 0.0;
  /// Called after every step of the run with the step, its timestep and σ, the images and the step's
  /// x̂0 (progress lines, trajectories: casdm-sample --trajectory). Empty: none.
  TORCH_ARG(std::function<void(const SampleStep&)>, on_step) = nullptr;
};

}  // namespace casdm
