#pragma once
// DDPM ancestral sampling (Ho et al. 2020): x_{t−1} = μ̃(x_t, x0) + exp(½·log v)·z, with the
// posterior mean μ̃ and a fixed variance: `FixedLarge` v = [σ̃²_1, β_1, β_2, …] or `FixedSmall`
// v = σ̃²_t (clipped at t = 0), as improved-diffusion. Respaced by section count ("250").
#include "casdm/sampler/concepts.hpp"

#include <ATen/ATen.h>

namespace casdm::sampler {

struct FixedLarge {
  static const at::Tensor& log_variance(const Process& p) { return p.log_variance_fixed_large(); }
};
struct FixedSmall {
  static const at::Tensor& log_variance(const Process& p) { return p.posterior_log_variance_clipped(); }
};

template <int64_t Steps = 1000, class Variance = FixedLarge>
struct Ancestral {
  static_assert(Steps >= 1, "casdm rule: a sampler needs at least one step");
  static constexpr const char* name = "ancestral";
  static constexpr int64_t default_steps = Steps;
  static constexpr double default_eta = 1.0;
  static std::string spacing(int64_t steps) { return std::to_string(steps); }
  static at::Tensor mean(const Process& p, const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& x0,
                         const at::Tensor&, double) {
    return p.q_posterior_mean(x0, x_t, t);
  }
  static at::Tensor noise_scale(const Process& p, const at::Tensor& t, const at::Tensor& like, double) {
    return p.nonzero_mask(t, like) * p.gather(Variance::log_variance(p), t, like).mul(0.5).exp();
  }
};
static_assert(Sampler<Ancestral<>>);

}  // namespace casdm::sampler
