#pragma once
// casdm::Model: a diffusion model composed from four policies.
//
//   using MyModel = casdm::Model<casdm::schedule::Cosine,
//                                casdm::topology::Cascaded<>,
//                                casdm::loss::Set<loss::EpsMSE<>, loss::X0MSE<>, loss::MuMix<>>,
//                                casdm::sampler::DDIM<100>>;
//   MyModel m(casdm::ModelOptions().image_size(28).channels(1));
//   auto report = m->training_losses(x0);   // x0 in [−1, 1]
//   report.total.backward();
//   auto images = m->sample(16);            // [16, 1, 28, 28] in [−1, 1]
//
// The combination is checked when the type is used: a loss that needs an x0 head, an ε head or
// a mixing weight r on a topology without one does not compile, and the message names the rule.
#include "casdm/core/compat.hpp"
#include "casdm/core/options.hpp"
#include "casdm/core/prediction.hpp"
#include "casdm/core/process.hpp"
#include "casdm/loss/set.hpp"
#include "casdm/sampler/concepts.hpp"
#include "casdm/schedule/concepts.hpp"
#include "casdm/topology/concepts.hpp"

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

namespace casdm {

template <schedule::Schedule S, topology::Topology Topo, loss::LossSet Losses, sampler::Sampler Smp>
class ModelImpl : public torch::nn::Cloneable<ModelImpl<S, Topo, Losses, Smp>> {
  static_assert(!Losses::needs_x0_head || Topo::has_x0_head,
                "casdm rule: L_x0 and feature losses need a topology with an x0 head (X0Only, DualHead or "
                "Cascaded); EpsOnly predicts only eps. See docs/policies.md#rules");
  static_assert(!Losses::needs_eps_head || Topo::has_eps_head,
                "casdm rule: L_eps and L_mu need a topology with an eps head (EpsOnly, DualHead or Cascaded); "
                "X0Only predicts only x0. See docs/policies.md#rules");
  static_assert(!Losses::needs_mix || Topo::has_mix,
                "casdm rule: L_mu needs a topology with a mixing weight r (DualHead or Cascaded). See "
                "docs/policies.md#rules");

 public:
  using schedule_type = S;
  using topology_type = Topo;
  using losses_type = Losses;
  using sampler_type = Smp;

  explicit ModelImpl(ModelOptions o = {}) : options(std::move(o)) { reset(); }

  void reset() override {
    validate();
    process_ = Process(S::betas(options.diffusion_steps()));
    respaced_.clear();
    nets_ = Topo::build(*this, options);
    losses_.emplace(options);
    losses_->attach(*this);
  }

  const Process& process() const { return process_; }
  typename Topo::Nets& nets() { return nets_; }

  /// The topology's prediction at (x_t, t) of the training process.
  Prediction predict(const at::Tensor& x_t, const at::Tensor& t) { return Topo::predict(nets_, process_, x_t, t); }

  /// The training objective on a batch x0 ∈ [−1, 1]^{N×C×H×W}, with t ~ U{0..T−1} and ε ~ N(0, I).
  loss::LossReport training_losses(const at::Tensor& x0) {
    check_images(x0, "training_losses");
    auto t = at::randint(0, process_.size(), {x0.size(0)}, x0.options().dtype(at::kLong));
    return training_losses(x0, t, at::randn_like(x0));
  }
  /// The same with given t and noise (tests, variance reduction, importance sampling).
  loss::LossReport training_losses(const at::Tensor& x0, const at::Tensor& t, const at::Tensor& noise) {
    check_images(x0, "training_losses");
    if (t.dim() != 1 || t.size(0) != x0.size(0))
      throw std::invalid_argument("training_losses: t must hold one timestep per image");
    auto x_t = process_.q_sample(x0, t, noise);
    auto pred = predict(x_t, t);
    return (*losses_)(LossInputs{process_, x0, x_t, t, noise, pred});
  }

  /// n images in [−1, 1] from the reverse process, on the device of the model's parameters.
  at::Tensor sample(int64_t n, const SampleOptions& so = {}) {
    if (n < 1) throw std::invalid_argument("sample: n must be >= 1");
    const int64_t T = process_.size();
    const int64_t steps = so.steps() > 0 ? so.steps() : std::min<int64_t>(Smp::default_steps, T);
    if (steps > T)
      throw std::invalid_argument("sample: " + std::to_string(steps) + " steps requested but the process has T = " +
                                  std::to_string(T));
    const auto& p = respaced(Smp::spacing(steps));
    const auto param = this->parameters().front();
    const std::vector<int64_t> shape{n, options.channels(), options.image_size(), options.image_size()};
    at::Tensor x;
    if (so.noise().defined()) {
      if (so.noise().sizes() != at::IntArrayRef(shape))
        throw std::invalid_argument("sample: the starting noise must be [n, C, H, W] of the model's size");
      x = so.noise().to(param.device(), param.scalar_type());
    } else {
      x = at::randn(shape, param.options().requires_grad(false));
    }
    const double eta = so.eta().value_or(Smp::default_eta);
    compat::NoGradGuard no_grad;
    TrainingModeGuard mode(*this);
    for (int64_t i = p.size() - 1; i >= 0; --i) {
      auto t = at::full({n}, i, x.options().dtype(at::kLong));
      x = step(p, x, t, eta, so.clip_denoised());
    }
    return x.clamp(-1, 1);
  }

  /// One reverse step x_t → x_{t−1} on process `p` (a respacing of this model's process).
  at::Tensor step(const Process& p, const at::Tensor& x, const at::Tensor& t, double eta, bool clip) {
    auto pr = Topo::predict(nets_, p, x, t);
    // One branch's mean from its x0 (clipped if asked) and an ε consistent with it; an undefined
    // ε is derived from x0 (the x0 head's branch).
    auto branch = [&](at::Tensor x0, at::Tensor eps) {
      if (clip) x0 = x0.clamp(-1, 1);
      if (clip || !eps.defined()) eps = p.predict_eps_from_x0(x, t, x0);
      return Smp::mean(p, x, t, x0, eps, eta);
    };
    at::Tensor mean;
    if constexpr (Topo::has_mix)
      mean = pr.r * branch(pr.x0, at::Tensor{}) + (1 - pr.r) * branch(pr.x0_star, pr.eps);
    else
      mean = branch(pr.x0, pr.eps);
    auto scale = Smp::noise_scale(p, t, x, eta);
    return mean + scale * at::randn_like(x);
  }

  /// The process respaced by an improved-diffusion spec; built once per spec.
  const Process& respaced(const std::string& spec) {
    auto it = respaced_.find(spec);
    if (it == respaced_.end()) it = respaced_.emplace(spec, process_.respaced(spec)).first;
    return it->second;
  }

  ModelOptions options;

 private:
  struct TrainingModeGuard {
    explicit TrainingModeGuard(torch::nn::Module& m) : m_(m), was_(m.is_training()) { m_.eval(); }
    ~TrainingModeGuard() { m_.train(was_); }
    torch::nn::Module& m_;
    bool was_;
  };

  void validate() const {
    auto fail = [](const std::string& m) { throw std::invalid_argument("ModelOptions: " + m); };
    if (options.image_size() < 1) fail("image_size must be >= 1");
    if (options.channels() < 1) fail("channels must be >= 1");
    if (options.diffusion_steps() < 2) fail("diffusion_steps must be >= 2");
  }

  void check_images(const at::Tensor& x, const char* what) const {
    const auto& o = options;
    if (x.dim() == 4 && x.size(1) == o.channels() && x.size(2) == o.image_size() && x.size(3) == o.image_size()) return;
    std::ostringstream msg;
    msg << what << ": expected images [N, " << o.channels() << ", " << o.image_size() << ", " << o.image_size()
        << "], got [";
    for (int64_t i = 0; i < x.dim(); ++i) msg << (i ? "," : "") << x.size(i);
    msg << "]";
    throw std::invalid_argument(msg.str());
  }

  typename Topo::Nets nets_;
  std::optional<Losses> losses_;
  Process process_;
  std::map<std::string, Process> respaced_;
};

/// The module holder (`TORCH_MODULE` cannot wrap a class template).
template <schedule::Schedule S, topology::Topology Topo, loss::LossSet Losses, sampler::Sampler Smp>
class Model : public torch::nn::ModuleHolder<ModelImpl<S, Topo, Losses, Smp>> {
 public:
  using Impl = ModelImpl<S, Topo, Losses, Smp>;
  using torch::nn::ModuleHolder<Impl>::ModuleHolder;
  Model() : torch::nn::ModuleHolder<Impl>(ModelOptions{}) {}
  explicit Model(ModelOptions o) : torch::nn::ModuleHolder<Impl>(std::move(o)) {}
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
