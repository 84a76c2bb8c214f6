#pragma once
// A predictor topology: which networks exist, what they output, and how gradients are routed.
//
//   struct MyTopology {
//     static constexpr const char* name = "mine";
//     static constexpr bool has_eps_head = true;   // a network outputs ε′
//     static constexpr bool has_x0_head = false;   // a network outputs x0′ (L_x0, feature losses)
//     static constexpr bool has_mix = false;       // a network outputs r (L_μ, mixed sampling)
//     static constexpr bool has_v_head = false;    // optional: a network outputs v′ (L_v)
//     struct Nets { ... };                          // module holders of its networks
//     static Nets build(torch::nn::Module& owner, const DenoiserOptions&);  // registers them
//     static Prediction predict(Nets&, const Process&, const at::Tensor& x_t, const at::Tensor& t,
//                               const at::Tensor& y = {});   // y: class labels (optional argument)
//   };
#include "casdm/topology/options.hpp"
#include "casdm/core/prediction.hpp"

#include <torch/nn/module.h>

#include <concepts>
#include <stdexcept>

namespace casdm::topology {

template <class T>
concept Topology = requires {
  { T::name } -> std::convertible_to<const char*>;
  { T::has_eps_head } -> std::convertible_to<bool>;
  { T::has_x0_head } -> std::convertible_to<bool>;
  { T::has_mix } -> std::convertible_to<bool>;
  typename T::Nets;
} && requires(torch::nn::Module& owner, const DenoiserOptions& o, typename T::Nets& nets, const Process& p,
              const at::Tensor& x) {
  { T::build(owner, o) } -> std::same_as<typename T::Nets>;
  { T::predict(nets, p, x, x) } -> std::same_as<Prediction>;
};

/// A network policy (see casdm/net/unet.hpp): `make(options, in, out)` gives a module holder
/// called as `net(x, t)`.
template <class A>
concept NetArch = requires(net::UNetOptions o, int64_t c, const at::Tensor& x) {
  { A::name } -> std::convertible_to<const char*>;
  { A::make(o, c, c)->forward(x, x) } -> std::same_as<at::Tensor>;
};

namespace detail {
/// net(x, t), or net(x, t, y) with class labels y; a network whose forward takes no labels refuses them.
template <class N>
at::Tensor call_net(N& net, const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) {
  if (!y.defined()) return net(x, t);
  if constexpr (requires { net(x, t, y); }) {
    return net(x, t, y);
  } else {
    throw std::invalid_argument("this network policy takes no class labels (its forward is net(x, t))");
  }
}
}  // namespace detail

/// Whether a topology's predict takes class labels: predict(nets, process, x_t, t, y).
template <class T>
inline constexpr bool takes_labels = requires(typename T::Nets& n, const Process& p, const at::Tensor& x) {
  { T::predict(n, p, x, x, x) } -> std::same_as<Prediction>;
};

/// Whether a topology has a v head (VOnly, CascadedV: a network outputs v′ = √ᾱ·ε′ − √(1−ᾱ)·x0′);
/// a topology that does not declare `has_v_head` has none.
template <class T>
inline constexpr bool has_v_head = requires { requires T::has_v_head; };

/// Whether a topology's θ outputs x0⋆ itself, with its graph (CascadedEDM: EDM's D_θ), for L_x0⋆.
template <class T>
inline constexpr bool has_x0_star_head = requires { requires T::has_x0_star_head; };

/// Whether a topology reads the network's time as a function of σ (EDM's preconditioning: c_noise =
/// ln(σ)/4), and so runs on a continuous schedule only.
template <class T>
inline constexpr bool sigma_parameterised = requires { requires T::sigma_parameterised; };

/// Whether a topology has a second network sized by DenoiserOptions::phi_net (the cascaded φ).
template <class T>
inline constexpr bool uses_phi_net = requires { requires T::uses_phi_net; };

}  // namespace casdm::topology
