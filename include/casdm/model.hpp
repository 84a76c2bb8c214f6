#pragma once
// casdm::Model: a diffusion model composed from four policies — the one type a user names.
//
//   using MyModel = casdm::Model<casdm::schedule::Cosine,
//                                casdm::topology::Cascaded<>,
//                                casdm::loss::Set<loss::EpsMSE<>, loss::X0MSE<>, loss::MuMix<>>,
//                                casdm::sampler::DDIM<100>>;
//   MyModel m(casdm::DenoiserOptions().image_size(32).channels(1));   // and ObjectiveOptions, if any
//   auto report = m->training_losses(x0);   // x0 in [−1, 1]
//   report.total.backward();
//   auto images = m->sample(16);            // [16, 1, 32, 32] in [−1, 1]
//
// It bundles three parts, each usable alone:
//   denoiser()  — Denoiser<Schedule, Topology>: the trained networks on the process (denoiser.hpp);
//                 what EMA copies, checkpoints and model files hold.
//   objective() — Objective<LossSet>: the loss terms and their frozen metric networks (objective.hpp).
//   Sampler     — the sampler type; sample() runs it on the denoiser (sampler/concepts.hpp).
// As a module, the model's parameters are the denoiser's (same names: "theta.*", "phi.*");
// to(device) moves the objective's frozen networks too.
//
// The combination is checked when the type is used: a loss that needs an x0 head, an ε head or
// a mixing weight r on a topology without one does not compile, and the message names the rule.
#include "casdm/denoiser.hpp"
#include "casdm/objective.hpp"
#include "casdm/sampler/options.hpp"

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace casdm {

template <schedule::Schedule S, topology::Topology Topo, loss::LossSet Losses, sampler::Sampler Smp>
class ModelImpl : public torch::nn::Module {
  static_assert(CheckCombination<Topo, Losses>::value);

 public:
  using schedule_type = S;
  using topology_type = Topo;
  using losses_type = Losses;
  using sampler_type = Smp;
  using Denoiser = casdm::Denoiser<S, Topo>;
  using Objective = casdm::Objective<Losses>;

  /// A denoiser of sizes `d` and an objective of settings `o` (feature-loss weights, λ by term).
  explicit ModelImpl(DenoiserOptions d = {}, ObjectiveOptions o = {});

  /// The trained model's stable identity, "schedule | topology(networks) | loss terms" (docs/policies.md,
  /// "Identities"). The sampler is not part of it: with_sampler_t<M, S> has M's identity, and either
  /// resumes and samples the other's checkpoints.
  static std::string identity() { return Denoiser::Impl::identity() + " | " + Losses::spec(); }
  /// The sampler's name and settings ("ddim(100)"), for reports.
  static std::string sampler_spec() { return sampler::spec<Smp>(); }

  Denoiser& denoiser() { return denoiser_; }
  const Denoiser& denoiser() const { return denoiser_; }
  Objective& objective() { return objective_; }
  const Objective& objective() const { return objective_; }

  const Process& process() const { return denoiser_->process(); }
  typename Topo::Nets& nets() { return denoiser_->nets(); }
  Prediction predict(const at::Tensor& x_t, const at::Tensor& t) { return denoiser_->predict(x_t, t); }
  template <sampler::spacing::Spacing P>
  const Process& respaced(int64_t steps) {
    return denoiser_->template respaced<P>(steps);
  }

  /// The training objective on a batch x0 ∈ [−1, 1]^{N×C×H×W}, with t ~ U{0..T−1} and ε ~ N(0, I).
  loss::LossReport training_losses(const at::Tensor& x0);
  /// The same with given t and noise (tests, variance reduction, importance sampling), t indexing
  /// `on` (a TrainingDraw's process; null: the training process), and class labels y of a
  /// class-conditional model, as they are (no dropout: see drop_labels).
  loss::LossReport training_losses(const at::Tensor& x0, const at::Tensor& t, const at::Tensor& noise,
                                   const at::Tensor& y = {}, const Process* on = nullptr);
  /// A class-conditional batch: t, ε drawn, then label dropout (each label "no label" with probability
  /// `label_dropout`, as TrainerOptions::label_dropout).
  loss::LossReport training_losses_labelled(const at::Tensor& x0, const at::Tensor& y, double label_dropout = 0.1);

  /// n images in [−1, 1] from the reverse process (the model's sampler), on the device of the
  /// model's parameters.
  at::Tensor sample(int64_t n, const SampleOptions& so = {});

  void train(bool on = true) override;
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Device device, bool non_blocking = false) override;

 private:
  Denoiser denoiser_;
  Objective objective_;
};

// Members defined out of the class (not inline): see presets/instantiation.hpp.
#define CASDM_MODEL_MEMBER template <schedule::Schedule S, topology::Topology Topo, loss::LossSet Losses, sampler::Sampler Smp>
#define CASDM_MODEL ModelImpl<S, Topo, Losses, Smp>
CASDM_MODEL_MEMBER
CASDM_MODEL::ModelImpl(DenoiserOptions d, ObjectiveOptions o) : denoiser_(std::move(d)), objective_(std::move(o)) {
  // The denoiser's networks are the model's own children, under the same names.
  for (const auto& kv : denoiser_->named_children()) this->register_module(kv.key(), kv.value());
}
CASDM_MODEL_MEMBER
loss::LossReport CASDM_MODEL::training_losses(const at::Tensor& x0) { return objective_->forward(*denoiser_, x0); }
CASDM_MODEL_MEMBER
loss::LossReport CASDM_MODEL::training_losses(const at::Tensor& x0, const at::Tensor& t, const at::Tensor& noise,
                                              const at::Tensor& y, const Process* on) {
  return objective_->forward(*denoiser_, x0, t, noise, y, on);
}
CASDM_MODEL_MEMBER
loss::LossReport CASDM_MODEL::training_losses_labelled(const at::Tensor& x0, const at::Tensor& y, double label_dropout) {
  denoiser_->check_images(x0, "training_losses");
  denoiser_->check_labels(y, x0.size(0), "training_losses");
  const auto draw = denoiser_->draw_training(x0.size(0), x0.options());
  auto noise = at::randn_like(x0);
  return objective_->forward(*denoiser_, x0, draw.t, noise, drop_labels(y, denoiser_->options.num_classes(), label_dropout),
                             draw.process.get());
}
CASDM_MODEL_MEMBER
at::Tensor CASDM_MODEL::sample(int64_t n, const SampleOptions& so) { return casdm::sample<Smp>(denoiser_, n, so); }
CASDM_MODEL_MEMBER
void CASDM_MODEL::train(bool on) {
  torch::nn::Module::train(on);
  denoiser_->train(on);  // the denoiser's own flag (its networks are ours already)
}
CASDM_MODEL_MEMBER
void CASDM_MODEL::to(torch::Device device, torch::Dtype dtype, bool non_blocking) {
  torch::nn::Module::to(device, dtype, non_blocking);
  objective_->to(device, dtype, non_blocking);
}
CASDM_MODEL_MEMBER
void CASDM_MODEL::to(torch::Dtype dtype, bool non_blocking) {
  torch::nn::Module::to(dtype, non_blocking);
  objective_->to(dtype, non_blocking);
}
CASDM_MODEL_MEMBER
void CASDM_MODEL::to(torch::Device device, bool non_blocking) {
  torch::nn::Module::to(device, non_blocking);
  objective_->to(device, non_blocking);
}
#undef CASDM_MODEL
#undef CASDM_MODEL_MEMBER

/// The module holder (`TORCH_MODULE` cannot wrap a class template).
template <schedule::Schedule S, topology::Topology Topo, loss::LossSet Losses, sampler::Sampler Smp>
class Model : public torch::nn::ModuleHolder<ModelImpl<S, Topo, Losses, Smp>> {
 public:
  using Impl = ModelImpl<S, Topo, Losses, Smp>;
  using Denoiser = typename Impl::Denoiser;
  using Objective = typename Impl::Objective;
  using torch::nn::ModuleHolder<Impl>::ModuleHolder;
  Model() : torch::nn::ModuleHolder<Impl>(DenoiserOptions{}, ObjectiveOptions{}) {}
  explicit Model(DenoiserOptions d, ObjectiveOptions o = {}) : torch::nn::ModuleHolder<Impl>(std::move(d), std::move(o)) {}
};

/// The same model with another sampler (paper Table 5: `with_sampler_t<CasDM, sampler::DDIM<10>>`).
template <class M, sampler::Sampler NewSampler>
struct with_sampler;
template <class S, class Topo, class Losses, class Smp, sampler::Sampler NewSampler>
struct with_sampler<Model<S, Topo, Losses, Smp>, NewSampler> {
  using type = Model<S, Topo, Losses, NewSampler>;
};
template <class M, sampler::Sampler NewSampler>
using with_sampler_t = typename with_sampler<M, NewSampler>::type;

}  // namespace casdm
