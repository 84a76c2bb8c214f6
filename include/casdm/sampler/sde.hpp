#pragma once
// Stochastic samplers in σ-space (k-diffusion's family): Euler ancestral and DPM-Solver++(2M) SDE
// and (3M) SDE (Lu et al. 2022; the SDE variants as k-diffusion gives them). As in karras.hpp the
// variance-preserving x_t is read as x = x_t/√ᾱ = x0 + σ·ε with σ = √((1−ᾱ)/ᾱ), each step maps
// x at σ = σ_i to σ' = σ_{i−1} and back to x_t-space by √ᾱ_{i−1}; the last step (σ' = 0) returns
// the data prediction x̂0 (mixed for the dual and cascaded topologies, see dpm_solver.hpp). z is
// standard normal noise, one draw per step: SampleOptions::step_noise where given (a test's fixed
// noise), else at::randn_like from the default generator, so a fixed seed gives fixed samples.
//
// Euler ancestral, η ∈ [0, 1] (η = 1 the DDPM posterior's noise, η = 0 the Euler ODE step):
//   σ_up = min(σ', η·σ'·√(σ² − σ'²)/σ),  σ_down = √(σ'² − σ_up²)
//   x' = x + (σ_down − σ)·(x − x̂0)/σ + σ_up·z
// DPM-Solver++(2M) SDE, with λ = −log σ, h = λ' − λ (> 0):
//   x' = (σ'/σ)·e^{−ηh}·x + (1 − e^{−(1+η)h})·x̂0 + c·(x̂0 − x̂0_prev)/r + σ'·√(1 − e^{−2ηh})·z,
//   r = h_prev/h, c = ½(1 − e^{−(1+η)h}) (midpoint) or 1 − (1 − e^{−(1+η)h})/((1+η)h) (Heun); no
//   correction at the first step.
// DPM-Solver++(3M) SDE, with g = (1+η)h, φ₂ = 1 + (e^{−g} − 1)/g, φ₃ = φ₂/g − ½:
//   x' = e^{−g}·x + (1 − e^{−g})·x̂0 + φ₂·D₁ − φ₃·D₂ + σ'·√(1 − e^{−2ηh})·z, where with the two
//   previous estimates (steps h₁, h₂ before; r₀ = h₁/h, r₁ = h₂/h) d₀ = (x̂0 − x̂0₁)/r₀,
//   d₁ = (x̂0₁ − x̂0₂)/r₁, D₁ = d₀ + (d₀ − d₁)·r₀/(r₀ + r₁), D₂ = (d₀ − d₁)/(r₀ + r₁); with one
//   previous estimate D₁ = (x̂0 − x̂0₁)/r₀, D₂ = 0; with none, both 0.
// With η = 0 the 2M SDE step is DPM-Solver++(2M)'s in the midpoint variant, and each is deterministic.
//
// Spacing spacing::Karras: N steps on Karras et al.'s ρ = 7 σ schedule, each the nearest step of
// the process (as Euler and Heun).
//
//   using Stochastic = casdm::with_sampler_t<casdm::presets::CasDM, casdm::sampler::DPMSolverPP2MSDE<25>>;
#include "casdm/sampler/concepts.hpp"
#include "casdm/sampler/spacing.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>

namespace casdm::sampler {

namespace detail {
/// What the σ-space stochastic samplers share: σ of each index, η (checked), and the step noise.
class SigmaRun {
 public:
  SigmaRun(const Process& p, const SampleOptions& so, const char* name, double default_eta)
      : eta_(so.eta().value_or(default_eta)), acp_(p.alphas_cumprod().contiguous()), noise_(so.step_noise()) {
    if (!std::isfinite(eta_) || eta_ < 0 || eta_ > 1)
      throw std::invalid_argument(fmt::format("the {} sampler's eta must be in [0, 1], got {}", name, eta_));
  }

 protected:
  /// The step from index i to i − 1: x̂0 at i, the result itself at i = 0; else move(x, x̂0, σ, σ') in
  /// σ-space (x = x_t/√ᾱ_i), taken back to x_t-space by √ᾱ_{i−1}.
  template <class Move>
  at::Tensor step_by(const Denoise& denoise, const at::Tensor& x_t, int64_t i, Move&& move) {
    const auto x0 = denoise(x_t, timesteps_like(x_t, i)).x0;
    if (i == 0) return x0;
    return move(x_t / std::sqrt(abar(i)), x0, sigma(i), sigma(i - 1)) * std::sqrt(abar(i - 1));
  }
  /// Standard normal noise like x for the step from σ to σ'.
  at::Tensor noise(const at::Tensor& x, double s, double s_next) const {
    return noise_ ? noise_(x, s, s_next) : at::randn_like(x);
  }
  /// The DPM-Solver++ SDE steps' noise, σ'·√(1 − e^{−2ηh})·z, added to x (none at η = 0).
  at::Tensor with_sde_noise(const at::Tensor& x, double s, double s_next, double h) const {
    return eta_ > 0 ? x + noise(x, s, s_next) * (s_next * std::sqrt(-std::expm1(-2 * eta_ * h))) : x;
  }
  double eta_;

 private:
  double abar(int64_t i) const { return acp_.data_ptr<double>()[i]; }
  double sigma(int64_t i) const { return std::sqrt((1 - abar(i)) / abar(i)); }
  at::Tensor acp_;
  std::function<at::Tensor(const at::Tensor&, double, double)> noise_;
};
}  // namespace detail

template <int64_t Steps = 20>
struct EulerAncestral {
  static_assert(Steps >= 1, "casdm rule: a sampler needs at least one step");
  static constexpr const char* name = "euler-a";
  static constexpr const char *label = "Euler ancestral", *description = "Euler ancestral (ρ = 7 steps, η = 1)";
  static constexpr int64_t default_steps = Steps;
  static constexpr double default_eta = 1.0;
  using Spacing = spacing::Karras;

  class Run : detail::SigmaRun {
   public:
    Run(const Process& p, const SampleOptions& so) : SigmaRun(p, so, name, default_eta) {}
    at::Tensor step(const Denoise& denoise, const at::Tensor& x_t, int64_t i) {
      return step_by(denoise, x_t, i, [&](const at::Tensor& x, const at::Tensor& x0, double s, double s_next) {
        const double up = std::min(s_next, eta_ * s_next * std::sqrt(s * s - s_next * s_next) / s);
        const double down = std::sqrt(s_next * s_next - up * up);
        const auto x_next = x + (x - x0) * ((down - s) / s);
        return up > 0 ? x_next + noise(x, s, s_next) * up : x_next;
      });
    }
  };
};
static_assert(Sampler<EulerAncestral<>>);

/// The correction DPM-Solver++(2M) SDE adds from the previous estimate.
enum class Correction { midpoint, heun };

template <int64_t Steps = 20, Correction C = Correction::midpoint>
struct DPMSolverPP2MSDE {
  static_assert(Steps >= 1, "casdm rule: a sampler needs at least one step");
  static constexpr const char* name = C == Correction::midpoint ? "dpmpp2m-sde" : "dpmpp2m-sde-heun";
  static constexpr const char* label = C == Correction::midpoint ? "DPM-Solver++(2M) SDE" : "DPM-Solver++(2M) SDE (Heun)";
  static constexpr const char* description = C == Correction::midpoint ? "DPM-Solver++(2M) SDE (midpoint; ρ = 7 steps, η = 1)"
                                                                       : "DPM-Solver++(2M) SDE (Heun; ρ = 7 steps, η = 1)";
  static constexpr int64_t default_steps = Steps;
  static constexpr double default_eta = 1.0;
  using Spacing = spacing::Karras;

  class Run : detail::SigmaRun {
   public:
    Run(const Process& p, const SampleOptions& so) : SigmaRun(p, so, name, default_eta) {}
    at::Tensor step(const Denoise& denoise, const at::Tensor& x_t, int64_t i) {
      return step_by(denoise, x_t, i, [&](const at::Tensor& x, const at::Tensor& x0, double s, double s_next) {
        const double h = std::log(s / s_next), g = (1 + eta_) * h;
        const double keep = -std::expm1(-g);  // 1 − e^{−(1+η)h}; (σ'/σ)·e^{−ηh} = e^{−(1+η)h}
        auto x_next = x * std::exp(-g) + x0 * keep;
        if (prev_.defined()) {
          const double c = C == Correction::midpoint ? 0.5 * keep : 1 - keep / g;
          x_next = x_next + (x0 - prev_) * (c * h / prev_h_);
        }
        prev_ = x0;
        prev_h_ = h;
        return with_sde_noise(x_next, s, s_next, h);
      });
    }

   private:
    at::Tensor prev_;
    double prev_h_ = 0;
  };
};
static_assert(Sampler<DPMSolverPP2MSDE<>>);

template <int64_t Steps = 20>
struct DPMSolverPP3MSDE {
  static_assert(Steps >= 1, "casdm rule: a sampler needs at least one step");
  static constexpr const char* name = "dpmpp3m-sde";
  static constexpr const char *label = "DPM-Solver++(3M) SDE", *description = "DPM-Solver++(3M) SDE (ρ = 7 steps, η = 1)";
  static constexpr int64_t default_steps = Steps;
  static constexpr double default_eta = 1.0;
  using Spacing = spacing::Karras;

  class Run : detail::SigmaRun {
   public:
    Run(const Process& p, const SampleOptions& so) : SigmaRun(p, so, name, default_eta) {}
    at::Tensor step(const Denoise& denoise, const at::Tensor& x_t, int64_t i) {
      return step_by(denoise, x_t, i, [&](const at::Tensor& x, const at::Tensor& x0, double s, double s_next) {
        const double h = std::log(s / s_next), g = (1 + eta_) * h;
        const double phi2 = 1 + std::expm1(-g) / g, phi3 = phi2 / g - 0.5;
        auto x_next = x * std::exp(-g) - x0 * std::expm1(-g);
        if (x0_2_.defined()) {
          const double r0 = h_1_ / h, r1 = h_2_ / h;
          const auto d0 = (x0 - x0_1_) / r0, d1 = (x0_1_ - x0_2_) / r1;
          x_next = x_next + (d0 + (d0 - d1) * (r0 / (r0 + r1))) * phi2 - (d0 - d1) * (phi3 / (r0 + r1));
        } else if (x0_1_.defined()) {
          x_next = x_next + (x0 - x0_1_) * (phi2 * h / h_1_);
        }
        x0_2_ = x0_1_, x0_1_ = x0;
        h_2_ = h_1_, h_1_ = h;
        return with_sde_noise(x_next, s, s_next, h);
      });
    }

   private:
    at::Tensor x0_1_, x0_2_;
    double h_1_ = 0, h_2_ = 0;
  };
};
static_assert(Sampler<DPMSolverPP3MSDE<>>);

}  // namespace casdm::sampler
