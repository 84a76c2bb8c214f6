#pragma once
// casdm::Objective: a loss set as an object of its own. It owns the loss terms' frozen metric
// networks (LPIPS's VGG16, ResNet-50, …), is held once by whoever trains, and is never copied per
// EMA rate or saved with the denoiser; a checkpoint records its checksum() instead.
//
//   casdm::Objective<casdm::loss::Set<casdm::loss::EpsMSE<>>> objective(options);
//   auto report = objective(*denoiser, x0);      // t ~ U{0..T−1}, ε ~ N(0, I); also ->forward(...)
//   report.total.backward();
#include "casdm/topology/options.hpp"
#include "casdm/core/prediction.hpp"
#include "casdm/io/state.hpp"
#include "casdm/io/text.hpp"
#include "casdm/loss/set.hpp"
#include "casdm/topology/concepts.hpp"

#include <fmt/format.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace casdm {

/// The paper's rules between a topology and a loss set; instantiated (once per pair) by Model and
/// by an Objective applied to a denoiser, so a forbidden combination does not compile.
template <topology::Topology Topo, loss::LossSet Losses>
struct CheckCombination {
  static_assert(!Losses::needs_x0_head || Topo::has_x0_head,
                "casdm rule: L_x0 and feature losses need a topology with an x0 head (X0Only, DualHead or "
                "Cascaded); EpsOnly predicts only eps. See docs/policies.md#rules");
  static_assert(!Losses::needs_eps_head || Topo::has_eps_head,
                "casdm rule: L_eps needs a topology with an eps head (EpsOnly, DualHead or Cascaded); X0Only, "
                "VOnly and CascadedV predict no eps. See docs/policies.md#rules");
  static_assert(!loss::needs_v_head<Losses> || topology::has_v_head<Topo>,
                "casdm rule: L_v needs a topology with a v head (VOnly or CascadedV). See docs/policies.md#rules");
  static_assert(!loss::needs_x0_star_head<Losses> || topology::has_x0_star_head<Topo>,
                "casdm rule: L_x0star needs a topology whose theta outputs x0star itself (CascadedEDM: EDM's "
                "denoiser D_theta); elsewhere x0star is derived from a detached eps or v. See docs/policies.md#rules");
  static_assert(!Losses::needs_mix || Topo::has_mix,
                "casdm rule: L_mu needs a topology with a mixing weight r (DualHead or Cascaded). See "
                "docs/policies.md#rules");
  static constexpr bool value = true;
};

template <loss::LossSet Losses>
class ObjectiveImpl : public torch::nn::Module {
 public:
  using losses_type = Losses;

  explicit ObjectiveImpl(ObjectiveOptions o = {});

  /// The objective on a batch x0 ∈ [−1, 1]^{N×C×H×W} of denoiser `d`, with t ~ U{0..T−1} and
  /// ε ~ N(0, I) drawn from the default generator.
  template <class D>
  loss::LossReport forward(D& d, const at::Tensor& x0);
  /// The same with given t and noise (tests, variance reduction, importance sampling), t indexing
  /// `on` (a TrainingDraw's process) or, null, the denoiser's training process; and for a
  /// class-conditional denoiser its labels y (int64 [N] in [0, K], K meaning "no label", as label
  /// dropout left them; undefined: every image "no label"). y's range is not checked here (that
  /// would sync every step): check a data set's labels once (DenoiserImpl::check_labels).
  template <class D>
  loss::LossReport forward(D& d, const at::Tensor& x0, const at::Tensor& t, const at::Tensor& noise,
                           const at::Tensor& y = {}, const Process* on = nullptr);

  /// Names the exact weights of the frozen metric networks ("" when there are none); a checkpoint
  /// keeps it, so a resume notices replaced weight files.
  std::string checksum() const { return io::checksum_of(*this); }
  /// The loss terms in order with the weights λ this objective sums them by (ObjectiveOptions::loss_weights
  /// or the type's).
  std::vector<std::pair<std::string, double>> weights() const { return losses_.weights(); }

  /// The settings it was built with (feature-loss side and weights folder, λ by term).
  ObjectiveOptions options;

 private:
  Losses losses_;
};

// Members defined out of the class (not inline): see presets/instantiation.hpp.
template <loss::LossSet Losses>
ObjectiveImpl<Losses>::ObjectiveImpl(ObjectiveOptions o) : options(std::move(o)), losses_(options) {
  losses_.attach(*this);
}

template <loss::LossSet Losses>
template <class D>
loss::LossReport ObjectiveImpl<Losses>::forward(D& d, const at::Tensor& x0) {
  d.check_images(x0, "training_losses");
  const auto draw = d.draw_training(x0.size(0), x0.options());
  return forward(d, x0, draw.t, at::randn_like(x0), {}, draw.process.get());
}

template <loss::LossSet Losses>
template <class D>
loss::LossReport ObjectiveImpl<Losses>::forward(D& d, const at::Tensor& x0, const at::Tensor& t,
                                                const at::Tensor& noise, const at::Tensor& y, const Process* on) {
  static_assert(CheckCombination<typename D::topology_type, Losses>::value);
  d.check_images(x0, "training_losses");
  if (t.dim() != 1 || t.size(0) != x0.size(0))
    throw std::invalid_argument(fmt::format("training_losses: t must hold one timestep per image ({}), got {}",
                                            x0.size(0), io::shape_str(t.sizes())));
  if (noise.sizes() != x0.sizes())
    throw std::invalid_argument(fmt::format("training_losses: noise {} differs from the images {}",
                                            io::shape_str(noise.sizes()), io::shape_str(x0.sizes())));
  if (y.defined() && (d.options.num_classes() < 1 || y.dim() != 1 || y.size(0) != x0.size(0)))
    throw std::invalid_argument(d.options.num_classes() < 1
                                    ? std::string("training_losses: class labels given to an unconditional model (num_classes 0)")
                                    : fmt::format("training_losses: expected one class label per image ({}), got {}",
                                                  x0.size(0), io::shape_str(y.sizes())));
  const auto& p = on ? *on : d.process();
  auto x_t = p.q_sample(x0, t, noise);
  auto pred = d.predict(p, x_t, t, y);
  return losses_(LossInputs{p, x0, x_t, t, noise, pred});
}

/// The module holder (`TORCH_MODULE` cannot wrap a class template).
template <loss::LossSet Losses>
class Objective : public torch::nn::ModuleHolder<ObjectiveImpl<Losses>> {
 public:
  using Impl = ObjectiveImpl<Losses>;
  using torch::nn::ModuleHolder<Impl>::ModuleHolder;
  Objective() : torch::nn::ModuleHolder<Impl>(ObjectiveOptions{}) {}
  explicit Objective(ObjectiveOptions o) : torch::nn::ModuleHolder<Impl>(std::move(o)) {}
};

}  // namespace casdm
