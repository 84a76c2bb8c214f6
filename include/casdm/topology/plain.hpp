#pragma once
// The DDPM baselines (Ho et al. 2020): one network θ(x_t, t) with C outputs read as ε′
// (EpsOnly), as x0′ (X0Only) or as v′ (VOnly); the other quantities are derived through the process.
#include "casdm/topology/concepts.hpp"
#include "casdm/core/names.hpp"

#include <fmt/format.h>

#include <string>
#include <utility>

namespace casdm::topology {

namespace detail {
template <NetArch Net>
struct SingleNet {
  decltype(Net::make(net::UNetOptions{}, 1, 1)) theta{nullptr};
};
/// θ of topology T: T::theta_arch with T::theta_channels.
template <class T>
SingleNet<typename T::theta_arch> build_single(torch::nn::Module& owner, const DenoiserOptions& o) {
  const auto [in, out] = T::theta_channels(o.channels());
  return {owner.register_module("theta", T::theta_arch::make(o.theta_net(), in, out))};
}
}  // namespace detail

/// ε-only: θ → ε′; x0′ = √(1/ᾱ)·x_t − √(1/ᾱ−1)·ε′. Trained by L_ε.
template <NetArch Net = net::arch::UNet>
struct EpsOnly {
  static constexpr const char* name = "eps-only";
  static std::string spec() { return fmt::format("{}({})", name, names::spec<Net>()); }
  static constexpr bool has_eps_head = true, has_x0_head = false, has_mix = false;
  /// θ's architecture, and its input and output channels for images of C channels.
  using theta_arch = Net;
  static constexpr std::pair<int64_t, int64_t> theta_channels(int64_t C) { return {C, C}; }
  using Nets = detail::SingleNet<Net>;
  static Nets build(torch::nn::Module& owner, const DenoiserOptions& o) {
    return detail::build_single<EpsOnly>(owner, o);
  }
  static Prediction predict(Nets& n, const Process& p, const at::Tensor& x_t, const at::Tensor& t,
                            const at::Tensor& y = {}) {
    Prediction out;
    out.eps = detail::call_net(n.theta, x_t, p.model_timesteps(t), y);
    out.x0 = p.predict_x0_from_eps(x_t, t, out.eps);
    return out;
  }
};

/// x0-only: θ → x0′; ε′ derived. Trained by L_x0 (and feature losses on x0′).
template <NetArch Net = net::arch::UNet>
struct X0Only {
  static constexpr const char* name = "x0-only";
  static std::string spec() { return fmt::format("{}({})", name, names::spec<Net>()); }
  static constexpr bool has_eps_head = false, has_x0_head = true, has_mix = false;
  /// θ's architecture, and its input and output channels for images of C channels.
  using theta_arch = Net;
  static constexpr std::pair<int64_t, int64_t> theta_channels(int64_t C) { return {C, C}; }
  using Nets = detail::SingleNet<Net>;
  static Nets build(torch::nn::Module& owner, const DenoiserOptions& o) {
    return detail::build_single<X0Only>(owner, o);
  }
  static Prediction predict(Nets& n, const Process& p, const at::Tensor& x_t, const at::Tensor& t,
                            const at::Tensor& y = {}) {
    Prediction out;
    out.x0 = detail::call_net(n.theta, x_t, p.model_timesteps(t), y);
    out.eps = p.predict_eps_from_x0(x_t, t, out.x0);
    return out;
  }
};

/// v-only (Salimans & Ho 2022): θ → v′ = √ᾱ·ε′ − √(1−ᾱ)·x0′; x0′ = √ᾱ·x_t − √(1−ᾱ)·v′ and
/// ε′ = √(1−ᾱ)·x_t + √ᾱ·v′ derived. Trained by L_v (loss::VMSE). Neither derived quantity counts
/// as a head: L_ε, L_x0 and feature losses are refused on it, as on the other single-head nets.
template <NetArch Net = net::arch::UNet>
struct VOnly {
  static constexpr const char* name = "v-only";
  static std::string spec() { return fmt::format("{}({})", name, names::spec<Net>()); }
  static constexpr bool has_eps_head = false, has_x0_head = false, has_mix = false, has_v_head = true;
  /// θ's architecture, and its input and output channels for images of C channels.
  using theta_arch = Net;
  static constexpr std::pair<int64_t, int64_t> theta_channels(int64_t C) { return {C, C}; }
  using Nets = detail::SingleNet<Net>;
  static Nets build(torch::nn::Module& owner, const DenoiserOptions& o) {
    return detail::build_single<VOnly>(owner, o);
  }
  static Prediction predict(Nets& n, const Process& p, const at::Tensor& x_t, const at::Tensor& t,
                            const at::Tensor& y = {}) {
    Prediction out;
    out.v = detail::call_net(n.theta, x_t, p.model_timesteps(t), y);
    out.x0 = p.predict_x0_from_v(x_t, t, out.v);
    out.eps = p.predict_eps_from_v(x_t, t, out.v);
    return out;
  }
};

/// Dual head (Benny & Wolf 2022): one θ with 2C+1 outputs: x0′, ε′ and the logit of r.
/// Every loss reaches the one network.
template <NetArch Net = net::arch::UNet>
struct DualHead {
  static constexpr const char* name = "dual-head";
  static std::string spec() { return fmt::format("{}({})", name, names::spec<Net>()); }
  static constexpr bool has_eps_head = true, has_x0_head = true, has_mix = true;
  /// θ's architecture, and its input and output channels for images of C channels.
  using theta_arch = Net;
  static constexpr std::pair<int64_t, int64_t> theta_channels(int64_t C) { return {C, 2 * C + 1}; }
  using Nets = detail::SingleNet<Net>;
  static Nets build(torch::nn::Module& owner, const DenoiserOptions& o) {
    return detail::build_single<DualHead>(owner, o);
  }
  static Prediction predict(Nets& n, const Process& p, const at::Tensor& x_t, const at::Tensor& t,
                            const at::Tensor& y = {}) {
    const int64_t C = x_t.size(1);
    auto out = detail::call_net(n.theta, x_t, p.model_timesteps(t), y);
    Prediction pr;
    pr.x0 = out.slice(1, 0, C);
    pr.eps = out.slice(1, C, 2 * C);
    pr.r = at::sigmoid(out.slice(1, 2 * C, 2 * C + 1));
    pr.x0_star = p.predict_x0_from_eps(x_t, t, pr.eps);
    return pr;
  }
};

}  // namespace casdm::topology
