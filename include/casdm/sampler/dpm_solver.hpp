#pragma once
// DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2): a second-order multistep solver
// of the probability-flow ODE in data prediction. With α = √ᾱ, σ = √(1−ᾱ), λ = log(α/σ) and
// h_i = λ_{i−1} − λ_i, one step from index i to i − 1 is
//   x_{i−1} = (σ_{i−1}/σ_i)·x_i − α_{i−1}·(e^{−h_i} − 1)·D_i,
//   D_i = (1 + 1/(2r))·x̂0_i − 1/(2r)·x̂0_{i+1},  r = h_{i+1}/h_i    (D = x̂0_i at the first step),
// one network evaluation per step; the last step (to ᾱ = 1, σ = 0) is first order and returns x̂0_0.
// Its first step is DDIM with η = 0 exactly.
//
// Mixed topologies (dual head, cascaded): x̂0 is the r-weighted estimate r·x0′ + (1−r)·x0⋆
// (core/estimate.hpp). It is the right data prediction because ε(x0) = (x_t − α·x0)/σ is affine, so
// r·ε(x0′) + (1−r)·ε′ = ε(x̂0): the pair (x̂0, ε̂) lies on the line x_t = α·x̂0 + σ·ε̂, and the paper's
// mixed DDIM mean (eq. 16) r·μ(x0′) + (1−r)·μ(x0⋆) is the DDIM mean of the single prediction x̂0.
// DDIM is this solver's first-order step, so DPM-Solver++ extrapolates the same x̂0 that the paper's
// sampler steps with, and reduces to it where it drops to first order.
//
// Spacing spacing::LogSNR: N steps uniform in log-SNR from σ_max = min(80, σ_{T−1})
// to index 0, Lu et al.'s choice for low resolutions.
//
//   using Fast = casdm::with_sampler_t<casdm::presets::CasDM, casdm::sampler::DPMSolverPP<10>>;
#include "casdm/sampler/concepts.hpp"
#include "casdm/sampler/spacing.hpp"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

namespace casdm::sampler {

template <int64_t Steps = 20>
struct DPMSolverPP {
  static_assert(Steps >= 1, "casdm rule: a sampler needs at least one step");
  static constexpr const char* name = "dpmpp2m";
  static constexpr const char *label = "DPM-Solver++(2M)", *description = "DPM-Solver++(2M) (log-SNR steps)";
  static constexpr int64_t default_steps = Steps;
  using Spacing = spacing::LogSNR;

  class Run {
   public:
    Run(const Process& p, const SampleOptions& so) : acp_(p.alphas_cumprod().contiguous()) {
      if (so.eta()) throw std::invalid_argument("the dpmpp2m sampler has no eta (it is DDIM's)");
    }
    at::Tensor step(const Denoise& denoise, const at::Tensor& x, int64_t i) {
      auto x0 = denoise(x, timesteps_like(x, i)).x0;
      if (i == 0) return x0;  // σ_{−1} = 0: x = x̂0 (first order)
      const double* a = acp_.data_ptr<double>();
      const double as = a[i], at_ = a[i - 1];
      const double h = lambda(at_) - lambda(as);
      at::Tensor d = x0;
      if (prev_x0_.defined()) {
        const double r = prev_h_ / h;
        d = x0 * (1 + 1 / (2 * r)) - prev_x0_ * (1 / (2 * r));
      }
      prev_x0_ = x0;
      prev_h_ = h;
      return x * std::sqrt((1 - at_) / (1 - as)) - d * (std::sqrt(at_) * std::expm1(-h));
    }

   private:
    static double lambda(double abar) { return 0.5 * (std::log(abar) - std::log1p(-abar)); }
    at::Tensor acp_;
    at::Tensor prev_x0_;
    double prev_h_ = 0;
  };
};
static_assert(Sampler<DPMSolverPP<>>);

}  // namespace casdm::sampler
