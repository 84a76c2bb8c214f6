#pragma once
// The paper's regression terms (An et al. 2024, eq. 9–12), each a mean over all elements:
//   L_ε  = ‖ε − ε′‖²                 (θ in Cas-DM)
//   L_x0 = ‖x0 − x0′‖²               (φ in Cas-DM)
//   L_v  = ‖v − v′‖², v = √ᾱ·ε − √(1−ᾱ)·x0   (beyond the paper: VOnly, CascadedV's θ)
//   L_μ  = ‖μ̃ − (r·sg[μ_x0′] + (1−r)·sg[μ_ε′])‖²   (trains r only)
//   L_x0⋆ = ‖x0 − x0⋆‖²              (θ in Cas-DM on EDM, where θ outputs x0⋆; beyond the paper)
// μ̃ is the true posterior mean q(x_{t−1}|x_t, x0); μ_x0′ and μ_ε′ are posterior means from x0′
// and from x0⋆ (the x0 derived from ε′). L_ε, L_x0 and L_v take a per-timestep weighting policy
// (loss/weighting.hpp: MinSNR<γ>) by a wrapper, Weighted<EpsMSE<>, MinSNR<>>, which keeps the term's
// kind, so one term twice with two weightings is still refused. A wrapper rather than a second
// template parameter: EpsMSE<W>'s name is in every checkpoint (the Model's type), and a defaulted
// parameter would change it and refuse the checkpoints written before.
#include "casdm/loss/concepts.hpp"
#include "casdm/loss/weighting.hpp"

namespace casdm::loss {

template <class W = std::ratio<1>>
struct EpsMSE : Stateless {
  using kind = EpsMSE<>;
  using weight = W;
  static constexpr const char* name = "eps";
  static constexpr bool needs_eps_head = true, needs_x0_head = false, needs_mix = false;
  static constexpr weighting::Target target = weighting::Target::eps;
  static at::Tensor truth(const LossInputs& in) { return in.noise; }
  static at::Tensor guess(const LossInputs& in) { return in.pred.eps; }
  using Stateless::Stateless;
  at::Tensor operator()(const LossInputs& in) const { return (in.noise - in.pred.eps).square().mean(); }
};

template <class W = std::ratio<1>>
struct X0MSE : Stateless {
  using kind = X0MSE<>;
  using weight = W;
  static constexpr const char* name = "x0";
  static constexpr bool needs_eps_head = false, needs_x0_head = true, needs_mix = false;
  static constexpr weighting::Target target = weighting::Target::x0;
  static at::Tensor truth(const LossInputs& in) { return in.x0; }
  static at::Tensor guess(const LossInputs& in) { return in.pred.x0; }
  using Stateless::Stateless;
  at::Tensor operator()(const LossInputs& in) const { return (in.x0 - in.pred.x0).square().mean(); }
};

/// L_v = ‖v − v′‖² (Salimans & Ho 2022) on a topology with a v head (VOnly, CascadedV).
template <class W = std::ratio<1>>
struct VMSE : Stateless {
  using kind = VMSE<>;
  using weight = W;
  static constexpr const char* name = "v";
  static constexpr bool needs_eps_head = false, needs_x0_head = false, needs_mix = false, needs_v_head = true;
  static constexpr weighting::Target target = weighting::Target::v;
  static at::Tensor truth(const LossInputs& in) { return in.process.v_target(in.x0, in.t, in.noise); }
  static at::Tensor guess(const LossInputs& in) { return in.pred.v; }
  using Stateless::Stateless;
  at::Tensor operator()(const LossInputs& in) const { return (truth(in) - in.pred.v).square().mean(); }
};

/// A regression term T (EpsMSE, X0MSE, VMSE) under a per-timestep weighting policy Wt:
///   loss::Weighted<loss::EpsMSE<>, loss::weighting::MinSNR<>>
/// The same term otherwise (name, weight λ, kind, heads): one term twice, weighted or not, is refused.
template <class T, weighting::Weighting Wt>
struct Weighted : T {
  static_assert(requires { T::target; }, "casdm rule: Weighted<T, W> takes a regression term (EpsMSE, X0MSE or VMSE)");
  using weighting_type = Wt;
  /// "eps@min-snr(5)": the term and its weighting.
  static std::string spec() { return std::string(T::name) + "@" + names::spec<Wt>(); }
  using T::T;
  at::Tensor operator()(const LossInputs& in) const { return weighting::mse<Wt>(T::truth(in), T::guess(in), in, T::target); }
};

/// L_x0⋆ = ‖x0 − x0⋆‖² on θ's own x0 estimate (CascadedEDM: x0⋆ = D_θ(x; σ)); beyond the paper.
/// Weighted<X0StarMSE<>, weighting::EDM<>> is EDM's loss on θ, as the EDM preset's on its D.
template <class W = std::ratio<1>>
struct X0StarMSE : Stateless {
  using kind = X0StarMSE<>;
  using weight = W;
  static constexpr const char* name = "x0star";
  static constexpr bool needs_eps_head = false, needs_x0_head = false, needs_mix = false, needs_x0_star_head = true;
  static constexpr weighting::Target target = weighting::Target::x0;
  static at::Tensor truth(const LossInputs& in) { return in.x0; }
  static at::Tensor guess(const LossInputs& in) { return in.pred.x0_star; }
  using Stateless::Stateless;
  at::Tensor operator()(const LossInputs& in) const { return (in.x0 - in.pred.x0_star).square().mean(); }
};

/// On a continuous process (EDM's) there is no previous step and so no posterior mean: L_μ is taken
/// on the mixed estimate itself, ‖x0 − (r·sg[x0′] + (1−r)·sg[x0⋆])‖² (the posterior mean is affine in
/// x0 with one coefficient c1(t) for all three, so this is the VP term without its c1(t)²).
template <class W = std::ratio<1>>
struct MuMix : Stateless {
  using kind = MuMix<>;
  using weight = W;
  static constexpr const char* name = "mu";
  // Its ε branch is x0⋆, which every topology with r has (from ε′ or from v′): no ε head needed.
  static constexpr bool needs_eps_head = false, needs_x0_head = true, needs_mix = true;
  using Stateless::Stateless;
  at::Tensor operator()(const LossInputs& in) const {
    const auto& p = in.process;
    const auto& r = in.pred.r;
    if (p.is_continuous()) return (in.x0 - (r * in.pred.x0.detach() + (1 - r) * in.pred.x0_star.detach())).square().mean();
    auto target = p.q_posterior_mean(in.x0, in.x_t, in.t);
    auto mu_x0 = p.q_posterior_mean(in.pred.x0.detach(), in.x_t, in.t);
    auto mu_eps = p.q_posterior_mean(in.pred.x0_star.detach(), in.x_t, in.t);
    return (target - (r * mu_x0 + (1 - r) * mu_eps)).square().mean();
  }
};

}  // namespace casdm::loss
