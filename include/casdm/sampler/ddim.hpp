#pragma once
// DDIM (Song et al. 2021, eq. 12) on a respaced process ("ddimN" spacing):
//   x_{t−1} = √ᾱ_prev·x0 + √(1−ᾱ_prev−σ²)·ε + σ·z,  σ = η·√((1−ᾱ_prev)/(1−ᾱ))·√(1−ᾱ/ᾱ_prev)
// The paper samples with 100 steps (Table 1) and 10 (Table 5).
#include "casdm/sampler/concepts.hpp"

#include <ratio>

namespace casdm::sampler {

template <int64_t Steps = 100, class Eta = std::ratio<0>>
struct DDIM {
  static_assert(Steps >= 1, "casdm rule: a sampler needs at least one step");
  static constexpr const char* name = "ddim";
  static constexpr int64_t default_steps = Steps;
  static constexpr double default_eta = static_cast<double>(Eta::num) / static_cast<double>(Eta::den);
  static std::string spacing(int64_t steps) { return "ddim" + std::to_string(steps); }
  static at::Tensor mean(const Process& p, const at::Tensor&, const at::Tensor& t, const at::Tensor& x0,
                         const at::Tensor& eps, double eta) {
    return p.ddim_mean(t, x0, eps, eta);
  }
  static at::Tensor noise_scale(const Process& p, const at::Tensor& t, const at::Tensor& like, double eta) {
    return p.nonzero_mask(t, like) * p.ddim_sigma(t, eta, like);
  }
};
static_assert(Sampler<DDIM<>>);

}  // namespace casdm::sampler
