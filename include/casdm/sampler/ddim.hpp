#pragma once
// DDIM (Song et al. 2021, eq. 12) on a respaced process ("ddimN" spacing):
//   x_{t−1} = √ᾱ_prev·x̂0 + √(1−ᾱ_prev−σ²)·ε̂ + σ·z,  σ = η·√((1−ᾱ_prev)/(1−ᾱ))·√(1−ᾱ/ᾱ_prev)
// (no noise at t = 0). The formula is Process::ddim_step, the one implementation of it. On a
// mixed topology (x̂0, ε̂) is the r-weighted estimate (core/estimate.hpp): the paper's eq. 16–17.
// The paper samples with 100 steps (Table 1) and 10 (Table 5).
//
//   using Fast = casdm::with_sampler_t<casdm::presets::CasDM, casdm::sampler::DDIM<10>>;
#include "casdm/core/names.hpp"
#include "casdm/sampler/concepts.hpp"

#include <fmt/format.h>

#include <ratio>
#include <stdexcept>

namespace casdm::sampler {

template <int64_t Steps = 100, class Eta = std::ratio<0>>
struct DDIM {
  static_assert(Steps >= 1, "casdm rule: a sampler needs at least one step");
  static constexpr const char* name = "ddim";
  static constexpr const char *label = "DDIM", *description = "DDIM (η = 0)";
  static constexpr int64_t default_steps = Steps;
  static constexpr double default_eta = static_cast<double>(Eta::num) / static_cast<double>(Eta::den);
  static std::string spacing(int64_t steps) { return fmt::format("ddim{}", steps); }
  /// "ddim(100)", "ddim(50, eta=1/2)".
  static std::string spec() {
    return Eta::num == 0 ? fmt::format("ddim({})", Steps) : fmt::format("ddim({}, eta={})", Steps, names::ratio<Eta>());
  }

  class Run {
   public:
    Run(const Process& p, const SampleOptions& so) : p_(p), eta_(so.eta().value_or(default_eta)) {
      if (!(eta_ >= 0)) throw std::invalid_argument(fmt::format("DDIM: eta must be >= 0, got {}", eta_));
    }
    at::Tensor step(const Denoise& denoise, const at::Tensor& x, int64_t i) {
      const auto t = timesteps_like(x, i);
      const auto e = denoise(x, t);
      if (eta_ == 0 || i == 0) return p_.ddim_mean(t, e.x0, e.eps, eta_);  // σ·z is zero: draw nothing
      return p_.ddim_step(x, t, e.x0, e.eps, eta_, at::randn_like(x));
    }

   private:
    const Process& p_;
    double eta_;
  };
};
static_assert(Sampler<DDIM<>>);

}  // namespace casdm::sampler
