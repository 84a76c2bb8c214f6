#pragma once
// Cas-DM's cascaded topology (An et al. 2024, §"Cascaded Diffusion Model", eq. 8–12):
//   θ(x_t, t) → ε′;   x0⋆ = (x_t − √(1−ᾱ_t)·sg[ε′]) / √ᾱ_t;   φ(input, t) → [x0′, logit r]
// θ is cut out of φ's graph: φ's input is built from a detached ε′, so L_x0, L_μ and any feature
// loss train φ only, and L_ε trains θ only. θ may predict v instead (theta_head::V, CascadedV):
// then ε′ and x0⋆ are derived from v′ and L_v trains θ. φ's input is x0⋆ (paper) or concat(x0⋆, ε′)
// (Table 4 ablation). On EDM's continuous σ process θ may be EDM's preconditioned denoiser
// (theta_head::EDM, CascadedEDM): x0⋆ = D_θ(x; σ), trained by the EDM-weighted L_x0⋆ (loss::X0StarMSE).
#include "casdm/topology/concepts.hpp"
#include "casdm/topology/edm.hpp"
#include "casdm/core/names.hpp"

#include <fmt/format.h>

#include <string>

#include <utility>

namespace casdm::topology {

namespace phi_input {
/// A φ input policy: its `name`, `channel_multiplier` (φ's input channels = multiplier·C) and
/// `make(x0_star, eps)`, both arguments already detached from θ.
template <class P>
concept PhiInput = requires(const at::Tensor& a) {
  { P::name } -> std::convertible_to<const char*>;
  { P::channel_multiplier } -> std::convertible_to<int64_t>;
  { P::make(a, a) } -> std::same_as<at::Tensor>;
} && (P::channel_multiplier >= 1);

/// φ sees x0⋆ (paper default).
struct X0Star {
  static constexpr const char* name = "x0star";
  static constexpr int64_t channel_multiplier = 1;
  static at::Tensor make(const at::Tensor& x0_star, const at::Tensor&) { return x0_star; }
};
/// φ sees concat(x0⋆, ε′) (Table 4: "Fix-Res CNN + concat").
struct Concat {
  static constexpr const char* name = "concat";
  static constexpr int64_t channel_multiplier = 2;
  static at::Tensor make(const at::Tensor& x0_star, const at::Tensor& eps) { return at::cat({x0_star, eps}, 1); }
};
}  // namespace phi_input

/// What θ predicts. Either way φ receives x0⋆ and ε′ built from θ's detached output.
namespace theta_head {
/// θ → ε′ (the paper); trained by L_ε.
struct Eps {
  static constexpr bool predicts_v = false;
};
/// θ is EDM's preconditioned denoiser (topology/edm.hpp): x0⋆ = D_θ(x; σ) = c_skip·x + c_out·F_θ,
/// kept with θ's graph in Prediction::x0_star for L_x0⋆ (φ gets it detached); ε′ derived from it.
/// Runs on a continuous σ schedule only, as EDMPrecond.
template <class SigmaData = std::ratio<1, 2>>
struct EDM {
  static constexpr bool predicts_v = false, predicts_x0 = true;
  static constexpr double sigma_data = static_cast<double>(SigmaData::num) / static_cast<double>(SigmaData::den);
};
/// θ → v′ (Salimans & Ho 2022); ε′ = √(1−ᾱ)·x_t + √ᾱ·v′ and x0⋆ = √ᾱ·x_t − √(1−ᾱ)·sg[v′] (taken from
/// v′ directly: through ε′ it would divide by √ᾱ, which loses float32 digits at high noise); trained
/// by L_v.
struct V {
  static constexpr bool predicts_v = true;
};
template <class H>
concept ThetaHead = requires {
  { H::predicts_v } -> std::convertible_to<bool>;
};
/// Whether θ's head is EDM's denoiser (its output is x0⋆ itself).
template <class H>
inline constexpr bool predicts_x0 = requires { requires H::predicts_x0; };
}  // namespace theta_head

namespace detail {
template <class... H>
struct head {
  static_assert(sizeof...(H) == 0, "casdm rule: a cascade takes at most one theta head (theta_head::Eps or V)");
  using type = theta_head::Eps;
};
template <theta_head::ThetaHead H>
struct head<H> {
  using type = H;
};
}  // namespace detail

// The theta head is an optional pack, so that Cascaded<PhiNet, Input, ThetaNet> stays the very type it
// was: its name is in every checkpoint, and a defaulted fourth parameter would change it.
template <NetArch PhiNet = net::arch::UNet, class Input = phi_input::X0Star, NetArch ThetaNet = net::arch::UNet,
          class... HeadArg>
struct Cascaded {
  using Head = typename detail::head<HeadArg...>::type;
  static_assert(phi_input::PhiInput<Input>,
                "casdm rule: the cascaded phi input must be a phi input policy built from theta's detached "
                "outputs (topology::phi_input::X0Star, topology::phi_input::Concat, or a type with "
                "a name, channel_multiplier >= 1 and make(x0_star, eps)); see docs/policies.md");
  static constexpr const char* name = Head::predicts_v ? "cascaded-v" : theta_head::predicts_x0<Head> ? "cascaded-edm" : "cascaded";
  /// "cascaded(φ <- φ input, θ)": the networks and what φ sees.
  static std::string spec() {
    return fmt::format("{}({} <- {}, {})", name, names::spec<PhiNet>(), names::spec<Input>(), names::spec<ThetaNet>());
  }
  static constexpr bool has_eps_head = !Head::predicts_v && !theta_head::predicts_x0<Head>, has_x0_head = true,
                        has_mix = true, has_v_head = Head::predicts_v;
  /// θ outputs x0⋆ with its graph (L_x0⋆), and reads c_noise = ln(σ)/4 (a continuous schedule only).
  static constexpr bool has_x0_star_head = theta_head::predicts_x0<Head>, sigma_parameterised = theta_head::predicts_x0<Head>;
  /// φ is a network of its own, sized by DenoiserOptions::phi_net.
  static constexpr bool uses_phi_net = true;
  using theta_arch = ThetaNet;
  using phi_arch = PhiNet;
  /// θ's input and output channels for images of C channels.
  static constexpr std::pair<int64_t, int64_t> theta_channels(int64_t C) { return {C, C}; }
  /// φ's input and output channels for images of C channels.
  static constexpr std::pair<int64_t, int64_t> phi_channels(int64_t C) { return {Input::channel_multiplier * C, C + 1}; }
  struct Nets {
    decltype(ThetaNet::make(net::UNetOptions{}, 1, 1)) theta{nullptr};
    decltype(PhiNet::make(net::UNetOptions{}, 1, 1)) phi{nullptr};
  };
  static Nets build(torch::nn::Module& owner, const DenoiserOptions& o) {
    const int64_t C = o.channels();
    Nets n;
    n.theta = owner.register_module("theta", ThetaNet::make(o.theta_net(), theta_channels(C).first, theta_channels(C).second));
    const auto [phi_in, phi_out] = phi_channels(C);
    n.phi = owner.register_module("phi", PhiNet::make(o.phi_net_options(), phi_in, phi_out));
    return n;
  }
  static Prediction predict(Nets& n, const Process& p, const at::Tensor& x_t, const at::Tensor& t,
                            const at::Tensor& y = {}) {
    const int64_t C = x_t.size(1);
    const auto tm = p.model_timesteps(t);
    Prediction pr;
    if constexpr (Head::predicts_v) {
      pr.v = detail::call_net(n.theta, x_t, tm, y);
      pr.eps = p.predict_eps_from_v(x_t, t, pr.v);
      pr.x0_star = p.predict_x0_from_v(x_t, t, pr.v.detach());
    } else if constexpr (theta_head::predicts_x0<Head>) {
      pr.x0_star = detail::edm_denoise(n.theta, p, x_t, t, tm, y, Head::sigma_data);
      pr.eps = p.predict_eps_from_x0(x_t, t, pr.x0_star);
    } else {
      pr.eps = detail::call_net(n.theta, x_t, tm, y);
      pr.x0_star = p.predict_x0_from_eps(x_t, t, pr.eps.detach());
    }
    const auto eps_sg = pr.eps.detach();
    auto out = detail::call_net(n.phi, Input::make(pr.x0_star.detach(), eps_sg), tm, y);
    pr.x0 = out.slice(1, 0, C);
    pr.r = at::sigmoid(out.slice(1, C, C + 1));
    return pr;
  }
};

/// Cas-DM with θ predicting v (the cascaded v-variant): θ → v′, φ(x0⋆) → x0′, r as in Cascaded.
template <NetArch PhiNet = net::arch::UNet, class Input = phi_input::X0Star, NetArch ThetaNet = net::arch::UNet>
using CascadedV = Cascaded<PhiNet, Input, ThetaNet, theta_head::V>;

/// Cas-DM on EDM: θ EDM's preconditioned denoiser, x0⋆ = D_θ(x; σ), φ(sg[x0⋆]) → x0′, r as in Cascaded.
template <NetArch PhiNet = net::arch::UNet, class Input = phi_input::X0Star, NetArch ThetaNet = net::arch::UNet>
using CascadedEDM = Cascaded<PhiNet, Input, ThetaNet, theta_head::EDM<>>;

}  // namespace casdm::topology
