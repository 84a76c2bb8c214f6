#pragma once
// EDM's σ-parameterised process (Karras et al. 2022, "Elucidating the design space", Table 1): data
// x0 in [−1, 1] of standard deviation σ_data = 0.5, noised to x = x0 + σ·ε for σ in [σ_min, σ_max] =
// [0.002, 80], training σ drawn with ln σ ~ N(P_mean, P_std²) = N(−1.2, 1.2²), the network's time
// c_noise = ln(σ)/4. There is no T: a model of this schedule has a continuous process
// (Process::continuous) whose T = DenoiserOptions::diffusion_steps levels, Karras's ρ = 7 spacing from
// σ_min to σ_max, are only what the samplers that visit steps (ddim, ancestral) choose among; the
// σ-spaced samplers take their σ exactly, and training draws σ anywhere.
//
//   using EDM = casdm::Model<casdm::schedule::EDM, casdm::topology::EDMPrecond<>, ...>;
#include "casdm/schedule/concepts.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cmath>
#include <concepts>
#include <stdexcept>
#include <vector>

namespace casdm::schedule {

struct EDM {
  static constexpr const char* name = "edm";
  static constexpr double sigma_min = 0.002, sigma_max = 80, sigma_data = 0.5, p_mean = -1.2, p_std = 1.2, rho = 7;
  /// The network's time is log_sigma_time·ln σ.
  static constexpr double log_sigma_time = 0.25;

  /// The T levels, increasing: σ_i = (σ_min^(1/ρ) + i/(T−1)·(σ_max^(1/ρ) − σ_min^(1/ρ)))^ρ.
  static std::vector<double> sigmas(int64_t T) {
    if (T < 2) throw std::invalid_argument(fmt::format("schedule::EDM: T must be >= 2 levels, got {}", T));
    const double a = std::pow(sigma_min, 1 / rho), b = std::pow(sigma_max, 1 / rho);
    std::vector<double> out;
    for (int64_t i = 0; i < T; ++i)
      out.push_back(i == 0 ? sigma_min : i == T - 1 ? sigma_max
                                       : std::pow(a + static_cast<double>(i) / static_cast<double>(T - 1) * (b - a), rho));
    return out;
  }
  /// The levels as β (ᾱ_i = 1/(1 + σ_i²)), for what reads a schedule's betas.
  static at::Tensor betas(int64_t T) {
    const auto s2 = at::tensor(sigmas(T), at::kDouble).square();
    const auto abar = 1.0 / (1.0 + s2);
    return 1.0 - abar / at::cat({at::ones({1}, at::kDouble), abar.slice(0, 0, T - 1)});
  }
  /// n training noise levels, ln σ ~ N(P_mean, P_std²), from LibTorch's default CPU generator.
  static at::Tensor training_sigmas(int64_t n) { return (at::randn({n}, at::kDouble) * p_std + p_mean).exp(); }
};
static_assert(Schedule<EDM>);

static_assert(Continuous<EDM>);

}  // namespace casdm::schedule
