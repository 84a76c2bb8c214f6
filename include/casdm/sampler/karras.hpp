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
#include <stdexcept>

namespace casdm::sampler {

namespace detail {
template <bool SecondOrder>
class KarrasRun {
 public:
  KarrasRun(const Process& p, const SampleOptions& so, const char* name) : acp_(p.alphas_cumprod().contiguous()) {
    if (so.eta()) throw std::invalid_argument(fmt::format("the {} sampler has no eta (it is DDIM's)", name));
  }
  at::Tensor step(const Denoise& denoise, const at::Tensor& x_t, int64_t i) {
    const auto x0 = denoise(x_t, timesteps_like(x_t, i)).x0;
    if (i == 0) return x0;  // σ_{−1} = 0
    const double* a = acp_.data_ptr<double>();
    const double sigma = std::sqrt((1 - a[i]) / a[i]), sigma_next = std::sqrt((1 - a[i - 1]) / a[i - 1]);
    const auto x = x_t / std::sqrt(a[i]);
    const auto d = (x - x0) / sigma;
    auto x_next = x + d * (sigma_next - sigma);
    if constexpr (SecondOrder) {
      const auto x0_next = denoise(x_next * std::sqrt(a[i - 1]), timesteps_like(x_t, i - 1)).x0;
      const auto d_next = (x_next - x0_next) / sigma_next;
      x_next = x + (d + d_next) * (0.5 * (sigma_next - sigma));
    }
    return x_next * std::sqrt(a[i - 1]);
  }

 private:
  at::Tensor acp_;
};
}  // namespace detail

template <int64_t Steps = 20>
struct Euler {
  static_assert(Steps >= 1, "casdm rule: a sampler needs at least one step");
  static constexpr const char* name = "euler";
  static constexpr const char *label = "Euler", *description = "Euler (Karras et al., ρ = 7 steps)";
  static constexpr int64_t default_steps = Steps;
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
  using Spacing = spacing::Karras;
  class Run : public detail::KarrasRun<true> {
   public:
    Run(const Process& p, const SampleOptions& so) : KarrasRun(p, so, name) {}
  };
};
static_assert(Sampler<Heun<>>);

}  // namespace casdm::sampler
