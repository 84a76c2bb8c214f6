#pragma once
// DDIM (Song et al. 2021, eq. 12) on a respaced process (spacing::Stride, improved-diffusion's "ddimN"):
//   x_{t−1} = √ᾱ_prev·x̂0 + √(1−ᾱ_prev−σ²)·ε̂ + σ·z,  σ = η·√((1−ᾱ_prev)/(1−ᾱ))·√(1−ᾱ/ᾱ_prev)
// (no noise at t = 0). The formula is sampler::ddim_step below, the one implementation of it. On a
// mixed topology (x̂0, ε̂) is the r-weighted estimate (core/estimate.hpp): the paper's eq. 16–17.
// The paper samples with 100 steps (Table 1) and 10 (Table 5).
//
//   using Fast = casdm::with_sampler_t<casdm::presets::CasDM, casdm::sampler::DDIM<10>>;
#include "casdm/core/names.hpp"
#include "casdm/sampler/concepts.hpp"
#include "casdm/sampler/spacing.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <ratio>
#include <stdexcept>

namespace casdm::sampler {

/// σ_t(η) = η·√((1−ᾱ_prev)/(1−ᾱ_t))·√(1−ᾱ_t/ᾱ_prev) (in float64, then cast), shaped like `like` ([N, 1, 1, …]).
inline at::Tensor ddim_sigma(const Process& p, const at::Tensor& t, double eta, const at::Tensor& like) {
  const auto a = p.gather(p.alphas_cumprod(), t, like.dim(), at::kDouble);
  const auto prev = p.gather(p.alphas_cumprod_prev(), t, like.dim(), at::kDouble);
  return (((1.0 - prev) / (1.0 - a)).sqrt() * (1.0 - a / prev).sqrt()).to(like.scalar_type()) * eta;
}

/// The DDIM mean without noise: √ᾱ_prev·x0 + √(1−ᾱ_prev−σ²)·ε.
inline at::Tensor ddim_mean(const Process& p, const at::Tensor& t, const at::Tensor& x0, const at::Tensor& eps, double eta) {
  if (x0.sizes() != eps.sizes())
    throw std::invalid_argument(fmt::format("ddim_mean: shapes differ, [{}] vs [{}]", fmt::join(x0.sizes(), ","),
                                            fmt::join(eps.sizes(), ",")));
  const auto sigma = ddim_sigma(p, t, eta, x0);
  const auto acp_prev = p.gather(p.alphas_cumprod_prev(), t, x0);
  return acp_prev.sqrt() * x0 + (1.0 - acp_prev - sigma * sigma).clamp_min(0).sqrt() * eps;
}

/// One DDIM step x_t → x_{t−1} on process `p`: ddim_mean + σ·z, with no noise where t == 0.
inline at::Tensor ddim_step(const Process& p, const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& x0,
                            const at::Tensor& eps, double eta, const at::Tensor& noise) {
  if (x_t.sizes() != noise.sizes())
    throw std::invalid_argument(fmt::format("ddim_step: shapes differ, [{}] vs [{}]", fmt::join(x_t.sizes(), ","),
                                            fmt::join(noise.sizes(), ",")));
  return ddim_mean(p, t, x0, eps, eta) + p.nonzero_mask(t, x_t) * ddim_sigma(p, t, eta, x_t) * noise;
}

template <int64_t Steps = 100, class Eta = std::ratio<0>>
struct DDIM {
  static_assert(Steps >= 1, "casdm rule: a sampler needs at least one step");
  static constexpr const char* name = "ddim";
  static constexpr const char *label = "DDIM", *description = "DDIM (η = 0)";
  static constexpr int64_t default_steps = Steps;
  static constexpr double default_eta = static_cast<double>(Eta::num) / static_cast<double>(Eta::den);
  using Spacing = spacing::Stride;
  /// "ddim(100)", "ddim(50, eta=1/2)".
  static std::string spec() {
    return Eta::num == 0 ? fmt::format("ddim({})", Steps) : fmt::format("ddim({}, eta={})", Steps, names::ratio<Eta>());
  }

  class Run {
   public:
    Run(const Process& p, const SampleOptions& so) : p_(p), eta_(so.eta().value_or(default_eta)) {
      if (!(eta_ >= 0 && eta_ <= 1)) throw std::invalid_argument(fmt::format("DDIM: eta must be in [0, 1], got {}", eta_));
    }
    at::Tensor step(const Denoise& denoise, const at::Tensor& x, int64_t i) {
      const auto t = timesteps_like(x, i);
      const auto e = denoise(x, t);
      if (eta_ == 0 || i == 0) return ddim_mean(p_, t, e.x0, e.eps, eta_);  // σ·z is zero: draw nothing
      return ddim_step(p_, x, t, e.x0, e.eps, eta_, at::randn_like(x));
    }

   private:
    const Process& p_;
    double eta_;
  };
};
static_assert(Sampler<DDIM<>>);

}  // namespace casdm::sampler
