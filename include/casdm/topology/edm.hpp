#pragma once
// EDM's preconditioning (Karras et al. 2022, Table 1, "Preconditioning"): θ is the raw network F, and
// the denoiser is
//   D(x; σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x; c_noise(σ)),   x = x0 + σ·ε,
//   c_skip = σ_d²/(σ² + σ_d²),  c_out = σ·σ_d/√(σ² + σ_d²),  c_in = 1/√(σ² + σ_d²),  c_noise = ln(σ)/4,
// σ_d = SigmaData (0.5 for data in [−1, 1]). casdm's x_t is variance-preserving, x_t = x/√(1 + σ²), so
// here x = √(1 + σ²)·x_t, and the scalings are taken in float64 before the cast. D is the x0 head
// (x0′); ε′ is derived. c_noise is the continuous process's time (schedule::EDM's log_sigma_time),
// so the topology runs on a continuous schedule only (a rule).
#include "casdm/topology/plain.hpp"
#include "casdm/core/names.hpp"

#include <fmt/format.h>

#include <ratio>
#include <type_traits>
#include <string>
#include <utility>

namespace casdm::topology {

/// The EDM scalings at σ (float64 tensors of σ's shape), shared with the tests' references.
struct EDMScalings {
  at::Tensor skip, out, in;
  static EDMScalings at(const at::Tensor& sigma, double sigma_data) {
    const double d2 = sigma_data * sigma_data;
    const auto s2 = sigma.square();
    const auto root = (s2 + d2).sqrt();
    return {d2 / (s2 + d2), sigma * sigma_data / root, 1.0 / root};
  }
};

namespace detail {
/// EDM's D(x; σ) = c_skip·x + c_out·F(c_in·x; c_noise) of the raw network `net` at (x_t, t) of p, with
/// x = √(1 + σ²)·x_t and `time` the network's (c_noise); the scalings in float64, then cast.
template <class N>
at::Tensor edm_denoise(N& net, const Process& p, const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& time,
                       const at::Tensor& y, double sigma_data) {
  const auto sigma = p.gather(p.sigmas(), t, x_t.dim(), at::kDouble);
  const auto c = EDMScalings::at(sigma, sigma_data);
  const auto to_x = (1.0 + sigma.square()).sqrt();
  const auto type = x_t.scalar_type();
  const auto f = call_net(net, x_t * (c.in * to_x).to(type), time, y);
  return x_t * (c.skip * to_x).to(type) + c.out.to(type) * f;
}
}  // namespace detail

template <NetArch Net = net::arch::UNet, class SigmaData = std::ratio<1, 2>>
struct EDMPrecond {
  static_assert(SigmaData::num > 0 && SigmaData::den > 0, "casdm rule: EDM's sigma_data must be positive");
  static constexpr const char* name = "edm";
  static std::string spec() {
    return std::is_same_v<SigmaData, std::ratio<1, 2>> ? fmt::format("{}({})", name, names::spec<Net>())
                                                       : fmt::format("{}({}, {})", name, names::spec<Net>(), names::ratio<SigmaData>());
  }
  static constexpr bool has_eps_head = false, has_x0_head = true, has_mix = false, sigma_parameterised = true;
  static constexpr double sigma_data = static_cast<double>(SigmaData::num) / static_cast<double>(SigmaData::den);
  using theta_arch = Net;
  static constexpr std::pair<int64_t, int64_t> theta_channels(int64_t C) { return {C, C}; }
  using Nets = detail::SingleNet<Net>;
  static Nets build(torch::nn::Module& owner, const DenoiserOptions& o) { return detail::build_single<EDMPrecond>(owner, o); }
  static Prediction predict(Nets& n, const Process& p, const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& y = {}) {
    Prediction out;
    out.x0 = detail::edm_denoise(n.theta, p, x_t, t, p.model_timesteps(t), y, sigma_data);
    out.eps = p.predict_eps_from_x0(x_t, t, out.x0);
    return out;
  }
};

}  // namespace casdm::topology
