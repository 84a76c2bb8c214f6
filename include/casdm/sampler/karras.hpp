#pragma once
// The deterministic Euler and Heun samplers of Karras et al. 2022 ("Elucidating the design space",
// Algorithm 1 without churn), in σ-space: with σ = √((1−ᾱ)/ᾱ) the variance-preserving x_t becomes
// x = x_t/√ᾱ = x0 + σ·ε, whose probability-flow ODE is dx/dσ = (x − D(x; σ))/σ, D the data
// prediction x̂0. One step from index i to i − 1 (σ_{−1} = 0):
//   Euler: x' = x + (σ_{i−1} − σ_i)·d,  d = (x − x̂0_i)/σ_i                  (one evaluation)
//   Heun:  Euler's x', then d' = (x' − x̂0(x'; σ_{i−1}))/σ_{i−1} and
//          x_{i−1} = x + (σ_{i−1} − σ_i)·(d + d')/2                          (two; one on the last step)
// and back to x_t-space by √ᾱ_{i−1}. The last step (σ = 0) is Euler's, returning x̂0_0. Euler is
// DDIM with η = 0 written in σ (the same map exactly); Heun is second order, 2N − 1 evaluations for
// N steps.
//
// With SampleOptions::churn (EDM's Algorithm 2, k-diffusion's s_churn): a step whose σ lies in
// [t_min, t_max] first adds noise·√(σ̂² − σ²)·z to x, σ̂ = (1 + γ)σ, γ = min(amount/N, √2 − 1), and steps
// from σ̂ instead of σ, the denoiser evaluated at σ̂ (DenoiseAt: between trained steps, the nearest
// step for the network unless exact_sigmas). z: SampleOptions::step_noise(x, σ, σ̂), else randn_like.
//
// Mixed topologies: x̂0 is the r-weighted estimate, the data prediction of the paper's mixed mean
// (see sampler/dpm_solver.hpp for why).
//
// Spacing spacing::Karras: N steps whose σ follow Karras et al.'s ρ = 7 schedule from
// σ_max = min(80, σ_{T−1}) to σ at index 0, each the nearest step of the process.
//
//   using Heun10 = casdm::with_sampler_t<casdm::presets::CasDM, casdm::sampler::Heun<10>>;
#include "casdm/sampler/concepts.hpp"
#include "casdm/sampler/spacing.hpp"

#include <fmt/format.h>

#include <cmath>
#include <functional>
#include <stdexcept>

namespace casdm::sampler {

namespace detail {
template <bool SecondOrder>
class KarrasRun {
 public:
  KarrasRun(const Process& p, const SampleOptions& so, const char* name)
      : acp_(p.alphas_cumprod().contiguous()), steps_(p.size()), churn_(so.churn()), noise_(so.step_noise()), name_(name) {
    if (so.eta()) throw std::invalid_argument(fmt::format("the {} sampler has no eta (it is DDIM's)", name));
    const auto& c = churn_;
    if (!(c.amount >= 0) || !std::isfinite(c.amount))
      throw std::invalid_argument(fmt::format("the {} sampler's churn must be a finite amount >= 0, got {}", name, c.amount));
    if (!(c.t_min >= 0) || !(c.t_max >= c.t_min))
      throw std::invalid_argument(fmt::format("the {} sampler's churn range must satisfy 0 <= t_min <= t_max, got [{}, {}]", name,
                                              c.t_min, c.t_max));
    if (!(c.noise >= 0) || !std::isfinite(c.noise))
      throw std::invalid_argument(fmt::format("the {} sampler's churn noise must be finite and >= 0, got {}", name, c.noise));
  }
  at::Tensor step(const Denoise& denoise, const DenoiseAt& at_sigma, const at::Tensor& x_t, int64_t i) {
    const double* a = acp_.data_ptr<double>();
    const double sigma = std::sqrt((1 - a[i]) / a[i]);
    const double gamma = churn_.amount > 0 && sigma >= churn_.t_min && sigma <= churn_.t_max
                             ? std::min(churn_.amount / static_cast<double>(steps_), std::sqrt(2.0) - 1)
                             : 0.0;
    if (gamma == 0) {
      const auto x0 = denoise(x_t, timesteps_like(x_t, i)).x0;
      if (i == 0) return x0;  // σ_{−1} = 0
      return from(denoise, x_t / std::sqrt(a[i]), x0, sigma, i);
    }
    // Churn: noise up to σ̂ = (1 + γ)σ, then the step from σ̂, the denoiser evaluated there.
    if (!at_sigma)
      throw std::invalid_argument(fmt::format("the {} sampler's churn needs the denoiser at any sigma (casdm::sample gives it)", name_));
    const double s_hat = sigma * (1 + gamma);
    auto x = x_t / std::sqrt(a[i]);
    const auto z = noise_ ? noise_(x, sigma, s_hat) : at::randn_like(x);
    x = x + z * (churn_.noise * std::sqrt(s_hat * s_hat - sigma * sigma));
    const auto x0 = at_sigma(x / std::sqrt(1 + s_hat * s_hat), s_hat).x0;
    if (i == 0) return x0;
    return from(denoise, x, x0, s_hat, i);
  }

 private:
  // The step from x at σ (x̂0 its estimate there) to index i − 1, back in x_t-space.
  at::Tensor from(const Denoise& denoise, const at::Tensor& x, const at::Tensor& x0, double sigma, int64_t i) {
    const double* a = acp_.data_ptr<double>();
    const double sigma_next = std::sqrt((1 - a[i - 1]) / a[i - 1]);
    const auto d = (x - x0) / sigma;
    auto x_next = x + d * (sigma_next - sigma);
    if constexpr (SecondOrder) {
      const auto x0_next = denoise(x_next * std::sqrt(a[i - 1]), timesteps_like(x, i - 1)).x0;
      const auto d_next = (x_next - x0_next) / sigma_next;
      x_next = x + (d + d_next) * (0.5 * (sigma_next - sigma));
    }
    return x_next * std::sqrt(a[i - 1]);
  }

  at::Tensor acp_;
  int64_t steps_;
  Churn churn_;
  std::function<at::Tensor(const at::Tensor&, double, double)> noise_;
  const char* name_;
};
}  // namespace detail

template <int64_t Steps = 20>
struct Euler {
  static_assert(Steps >= 1, "casdm rule: a sampler needs at least one step");
  static constexpr const char* name = "euler";
  static constexpr const char *label = "Euler", *description = "Euler (Karras et al., ρ = 7 steps)";
  static constexpr int64_t default_steps = Steps;
  static constexpr bool churn = true;
  using Spacing = spacing::Karras;
  class Run : public detail::KarrasRun<false> {
   public:
    Run(const Process& p, const SampleOptions& so) : KarrasRun(p, so, name) {}
  };
};
static_assert(Sampler<Euler<>>);

template <int64_t Steps = 10>
struct Heun {
  static_assert(Steps >= 1, "casdm rule: a sampler needs at least one step");
  static constexpr const char* name = "heun";
  static constexpr const char *label = "Heun", *description = "Heun (Karras et al., ρ = 7 steps)";
  static constexpr int64_t default_steps = Steps;
  static constexpr bool churn = true;
  using Spacing = spacing::Karras;
  class Run : public detail::KarrasRun<true> {
   public:
    Run(const Process& p, const SampleOptions& so) : KarrasRun(p, so, name) {}
  };
};
static_assert(Sampler<Heun<>>);

}  // namespace casdm::sampler
