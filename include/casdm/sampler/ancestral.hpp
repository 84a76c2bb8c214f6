#pragma once
// DDPM ancestral sampling (Ho et al. 2020): x_{t−1} = μ̃(x_t, x̂0) + exp(½·log v)·z, with the
// posterior mean μ̃ and a fixed variance: `FixedLarge` v = [σ̃²_1, β_1, β_2, …] or `FixedSmall`
// v = σ̃²_t (clipped at t = 0), as improved-diffusion. Respaced by section count ("250").
#include "casdm/sampler/concepts.hpp"
#include "casdm/sampler/spacing.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace casdm::sampler {

struct FixedLarge {
  static constexpr const char* name = "fixed-large";
  static const at::Tensor& log_variance(const Process& p) { return p.log_variance_fixed_large(); }
};
struct FixedSmall {
  static constexpr const char* name = "fixed-small";
  static const at::Tensor& log_variance(const Process& p) { return p.posterior_log_variance_clipped(); }
};

template <int64_t Steps = 1000, class Variance = FixedLarge>
struct Ancestral {
  static_assert(Steps >= 1, "casdm rule: a sampler needs at least one step");
  static constexpr const char* name = "ancestral";
  static constexpr const char *label = "ancestral", *description = "DDPM ancestral";
  static constexpr int64_t default_steps = Steps;
  using Spacing = spacing::Even;
  static std::string spec() { return fmt::format("ancestral({}, {})", Steps, Variance::name); }

  class Run {
   public:
    Run(const Process& p, const SampleOptions& so) : p_(p) {
      if (so.eta()) throw std::invalid_argument("the ancestral sampler has no eta (it is DDIM's)");
    }
    at::Tensor step(const Denoise& denoise, const at::Tensor& x, int64_t i) {
      const auto t = timesteps_like(x, i);
      auto mean = p_.q_posterior_mean(denoise(x, t).x0, x, t);
      if (i == 0) return mean;
      return mean + p_.gather(Variance::log_variance(p_), t, x).mul(0.5).exp() * at::randn_like(x);
    }

   private:
    const Process& p_;
  };
};
static_assert(Sampler<Ancestral<>>);

}  // namespace casdm::sampler
