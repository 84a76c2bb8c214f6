#pragma once
// casdm::Denoiser: the trained part of a diffusion model — a topology's networks on a schedule's
// process. It is what EMA copies, checkpoints and model files hold, what a data-parallel wrapper
// wraps and what samplers call. It holds no loss and no frozen metric network.
//
//   casdm::Denoiser<casdm::schedule::Cosine, casdm::topology::Cascaded<>> d(options);
//   auto pred = d->predict(x_t, t);                                    // ε′, x0′, r, x0⋆
//   auto images = casdm::sample<casdm::sampler::DDIM<50>>(d, 16);     // [16, C, H, W] in [−1, 1]
#include "casdm/core/compat.hpp"
#include "casdm/core/estimate.hpp"
#include "casdm/core/names.hpp"
#include "casdm/topology/options.hpp"
#include "casdm/core/process.hpp"
#include "casdm/io/text.hpp"
#include "casdm/sampler/concepts.hpp"
#include "casdm/schedule/concepts.hpp"
#include "casdm/topology/concepts.hpp"

#include <c10/core/GradMode.h>
#include <fmt/format.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace casdm {

/// The noise levels of one training batch: t indexes `process`, or the denoiser's training process
/// where `process` is null. A discrete schedule draws t ~ U{0..T−1}; a continuous one (EDM's) draws σ
/// anywhere from its training distribution, and `process` is the batch's own: its distinct levels in
/// increasing order (Process::continuous), t each image's.
struct TrainingDraw {
  at::Tensor t;
  std::shared_ptr<const Process> process;
};

namespace detail {
template <schedule::Schedule S>
TrainingDraw draw_training(const Process& p, int64_t n, const at::TensorOptions& like) {
  if constexpr (schedule::Continuous<S>) {
    (void)p;
    const auto drawn = S::training_sigmas(n).contiguous();
    const double* s = drawn.template data_ptr<double>();
    std::vector<std::pair<double, int64_t>> order;
    for (int64_t i = 0; i < n; ++i) order.emplace_back(s[i], i);
    std::sort(order.begin(), order.end());
    std::vector<double> levels;
    std::vector<int64_t> t(static_cast<size_t>(n));
    for (const auto& [sigma, i] : order) {
      if (levels.empty() || sigma > levels.back()) levels.push_back(sigma);
      t[static_cast<size_t>(i)] = static_cast<int64_t>(levels.size()) - 1;
    }
    // The batch's own levels, built directly (every training step: no search of p's grid for steps to report).
    return {at::tensor(t, at::kLong).to(like.device()), std::make_shared<const Process>(Process::continuous(levels, S::log_sigma_time))};
  } else {
    return {at::randint(0, p.size(), {n}, like.dtype(at::kLong)), nullptr};
  }
}
}  // namespace detail

/// A denoiser of any schedule and topology as sampling sees it (every DenoiserImpl is one): what
/// casdm::sample, eval::draw_samples and the programs call, so that their code is compiled once per
/// sampler, not once per preset and sampler.
class AnyDenoiser {
 public:
  virtual ~AnyDenoiser() = default;
  virtual const DenoiserOptions& denoiser_options() const = 0;
  /// The training process.
  virtual const Process& process() const = 0;
  /// The process `make` derives from the training process (a respacing), made once per `key`.
  virtual const Process& derived_process(const std::string& key, const std::function<Process(const Process&)>& make) = 0;
  virtual Estimate denoise(const Process& p, const at::Tensor& x_t, const at::Tensor& t, bool clip, const at::Tensor& y = {}) = 0;
  virtual Estimate guided(const Process& p, const at::Tensor& x_t, const at::Tensor& t, bool clip, const at::Tensor& y,
                          double w) = 0;
  virtual void check_labels(const at::Tensor& y, int64_t n, const char* what, bool null_ok = false) const = 0;
  /// The networks' module (eval mode while sampling; its first parameter gives device and dtype).
  virtual torch::nn::Module& networks() = 0;

 protected:
  AnyDenoiser() = default;
  AnyDenoiser(const AnyDenoiser&) = default;
  AnyDenoiser& operator=(const AnyDenoiser&) = default;
};

namespace detail {
/// The training process of `d` respaced by spacing policy P to `steps` steps, made once per policy
/// and count (its key "P:steps" in d's derived processes).
template <sampler::spacing::Spacing P>
const Process& respaced(AnyDenoiser& d, int64_t steps) {
  return d.derived_process(fmt::format("{}:{}", P::name, steps),
                           [steps](const Process& p) { return p.respaced(P::timesteps(p, steps)); });
}
}  // namespace detail

template <schedule::Schedule S, topology::Topology Topo>
class DenoiserImpl : public torch::nn::Cloneable<DenoiserImpl<S, Topo>>, public AnyDenoiser {
  static_assert(!topology::sigma_parameterised<Topo> || schedule::Continuous<S>,
                "casdm rule: EDM's preconditioning (topology::EDMPrecond) feeds the network c_noise = ln(sigma)/4 and "
                "needs a continuous sigma schedule (schedule::EDM); a discrete schedule's network sees its step. See "
                "docs/policies.md#rules");

 public:
  using schedule_type = S;
  using topology_type = Topo;

  explicit DenoiserImpl(DenoiserOptions o = {}) : options(std::move(o)) { reset(); }

  /// The denoiser's stable identity, "schedule | topology(networks)" (docs/policies.md,
  /// "Identities"): what model files and checkpoints name it by, the same on every compiler.
  static std::string identity() { return names::spec<S>() + " | " + names::spec<Topo>(); }

  void reset() override;

  /// The training process (T = options.diffusion_steps(); a continuous schedule's: its T levels).
  const Process& process() const override { return process_; }
  /// The noise levels of a training batch of n images like `like` (TrainingDraw).
  TrainingDraw draw_training(int64_t n, const at::TensorOptions& like) const { return detail::draw_training<S>(process_, n, like); }
  const DenoiserOptions& denoiser_options() const override { return options; }
  torch::nn::Module& networks() override { return *this; }
  const Process& derived_process(const std::string& key, const std::function<Process(const Process&)>& make) override {
    auto it = respaced_.find(key);
    if (it == respaced_.end()) it = respaced_.emplace(key, make(process_)).first;
    return it->second;
  }
  typename Topo::Nets& nets() { return nets_; }

  /// The topology's prediction at (x_t, t) of the training process; `y`: class labels of a
  /// class-conditional model (DenoiserOptions::num_classes; index K is "no label"), or undefined.
  Prediction predict(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& y = {}) {
    return predict(process_, x_t, t, y);
  }
  /// The same on `p`, a respacing of the training process (t indexes p; the networks see the
  /// original steps).
  Prediction predict(const Process& p, const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& y = {});
  /// What a sampler steps with at (x_t, t) of `p`: the (mixed, optionally clipped) estimate.
  Estimate denoise(const Process& p, const at::Tensor& x_t, const at::Tensor& t, bool clip, const at::Tensor& y = {}) override;
  /// The classifier-free guided estimate (1+w)·E(y) − w·E(∅) of the raw (unclipped) estimates of
  /// `denoise`, both halves in one network pass over the doubled batch; then, if `clip`, x̂0 clipped
  /// once and ε re-derived from it (Ho & Salimans 2022, GLIDE: combine the predictions, clip the
  /// result). w = 0 is denoise(p, x_t, t, clip, y).
  Estimate guided(const Process& p, const at::Tensor& x_t, const at::Tensor& t, bool clip, const at::Tensor& y, double w) override;

  /// Refuses labels that are not int64 [n] class indices in [0, num_classes) (`null_ok`: or K, "no
  /// label"), naming `what`; one host sync.
  void check_labels(const at::Tensor& y, int64_t n, const char* what, bool null_ok = false) const override;

  /// The process respaced by spacing policy P to `steps` steps (sampler/spacing.hpp); built once
  /// per policy and count.
  template <sampler::spacing::Spacing P>
  const Process& respaced(int64_t steps) {
    return detail::respaced<P>(*this, steps);
  }

  /// Refuses anything but images [N, C, H, W] of this denoiser's size, naming `what`.
  void check_images(const at::Tensor& x, const char* what) const;

  /// Mixed precision of the networks (not kept in checkpoints: a choice of the run): at::kBFloat16
  /// or at::kHalf runs them under LibTorch's autocast, their outputs returned in x_t's dtype; the
  /// process math around them stays in float32/float64. at::kFloat (the default): off.
  void precision(at::ScalarType dtype) {
    if (dtype != at::kFloat && dtype != at::kBFloat16 && dtype != at::kHalf)
      throw std::invalid_argument("precision: float32, bfloat16 or float16");
    precision_ = dtype;
  }
  at::ScalarType precision() const { return precision_; }

  DenoiserOptions options;

 private:
  void validate() const;

  typename Topo::Nets nets_;
  at::ScalarType precision_ = at::kFloat;
  Process process_;
  std::map<std::string, Process> respaced_;
};

// Members defined out of the class (not inline), so that a compiled library of presets can hold
// their one instantiation (presets/instantiation.hpp).
template <schedule::Schedule S, topology::Topology Topo>
void DenoiserImpl<S, Topo>::reset() {
  validate();
  if constexpr (schedule::Continuous<S>)
    process_ = Process::continuous(S::sigmas(options.diffusion_steps()), S::log_sigma_time);
  else
    process_ = Process(S::betas(options.diffusion_steps()));
  respaced_.clear();
  nets_ = Topo::build(*this, options);
}

template <schedule::Schedule S, topology::Topology Topo>
Prediction DenoiserImpl<S, Topo>::predict(const Process& p, const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& y) {
  auto run = [&] {
    if constexpr (topology::takes_labels<Topo>) {
      return Topo::predict(nets_, p, x_t, t, y);
    } else {
      if (y.defined()) throw std::invalid_argument(fmt::format("topology {} takes no class labels", Topo::name));
      return Topo::predict(nets_, p, x_t, t);
    }
  };
  if (precision_ == at::kFloat) return run();
  Prediction out;
  {
    compat::Autocast autocast(x_t.device(), precision_);
    out = run();
  }
  for (auto* f : {&out.eps, &out.x0, &out.r, &out.x0_star, &out.v})
    if (f->defined() && f->is_floating_point()) *f = f->to(x_t.scalar_type());
  return out;
}

template <schedule::Schedule S, topology::Topology Topo>
Estimate DenoiserImpl<S, Topo>::denoise(const Process& p, const at::Tensor& x_t, const at::Tensor& t, bool clip,
                                        const at::Tensor& y) {
  return estimate(predict(p, x_t, t, y), p, x_t, t, clip);
}

template <schedule::Schedule S, topology::Topology Topo>
Estimate DenoiserImpl<S, Topo>::guided(const Process& p, const at::Tensor& x_t, const at::Tensor& t, bool clip,
                                       const at::Tensor& y, double w) {
  if (w == 0) return denoise(p, x_t, t, clip, y);
  const int64_t n = x_t.size(0);
  const auto null = at::full_like(y, options.num_classes());
  const auto both = denoise(p, at::cat({x_t, x_t}), at::cat({t, t}), /*clip=*/false, at::cat({y, null}));
  auto mix = [&](const at::Tensor& e) { return at::lerp(e.slice(0, n, 2 * n), e.slice(0, 0, n), 1.0 + w); };
  Estimate g{mix(both.x0), mix(both.eps)};
  if (clip) {
    g.x0 = g.x0.clamp(-1, 1);
    g.eps = p.predict_eps_from_x0(x_t, t, g.x0);
  }
  return g;
}

template <schedule::Schedule S, topology::Topology Topo>
void DenoiserImpl<S, Topo>::check_labels(const at::Tensor& y, int64_t n, const char* what, bool null_ok) const {
  const int64_t K = options.num_classes();
  if (K < 1) throw std::invalid_argument(fmt::format("{}: class labels given to an unconditional model (num_classes 0)", what));
  if (y.dim() != 1 || y.size(0) != n || y.is_floating_point() || y.is_complex() || y.scalar_type() == at::kBool)
    throw std::invalid_argument(fmt::format("{}: expected {} integer class labels [{}], got {} {}", what, n, n,
                                            c10::toString(y.scalar_type()), io::shape_str(y.sizes())));
  const int64_t hi = null_ok ? K : K - 1;
  if (n > 0 && (y.lt(0) | y.gt(hi)).any().item<bool>())
    throw std::invalid_argument(fmt::format("{}: class labels must lie in [0, {}], got {} … {}", what, hi,
                                            y.min().item<int64_t>(), y.max().item<int64_t>()));
}

template <schedule::Schedule S, topology::Topology Topo>
void DenoiserImpl<S, Topo>::check_images(const at::Tensor& x, const char* what) const {
  const auto& o = options;
  if (x.dim() == 4 && x.size(1) == o.channels() && x.size(2) == o.image_size() && x.size(3) == o.image_size()) return;
  throw std::invalid_argument(fmt::format("{}: expected images [N, {}, {}, {}], got {}", what, o.channels(),
                                          o.image_size(), o.image_size(), io::shape_str(x.sizes())));
}

template <schedule::Schedule S, topology::Topology Topo>
void DenoiserImpl<S, Topo>::validate() const {
  auto fail = [](const char* m) { throw std::invalid_argument(fmt::format("DenoiserOptions: {}", m)); };
  if (options.image_size() < 1) fail("image_size must be >= 1");
  if (options.channels() < 1) fail("channels must be >= 1");
  if (options.diffusion_steps() < 2) fail("diffusion_steps must be >= 2");
  if (options.num_classes() < 0) fail("num_classes must be >= 0");
  if (options.num_classes() > 0 && !topology::takes_labels<Topo>) fail("this topology takes no class labels");
  if (options.phi_net() && !topology::uses_phi_net<Topo>)
    fail("phi_net is set, but this topology has no phi network (only Cascaded has)");
}

/// The module holder (`TORCH_MODULE` cannot wrap a class template).
template <schedule::Schedule S, topology::Topology Topo>
class Denoiser : public torch::nn::ModuleHolder<DenoiserImpl<S, Topo>> {
 public:
  using Impl = DenoiserImpl<S, Topo>;
  using torch::nn::ModuleHolder<Impl>::ModuleHolder;
  Denoiser() : torch::nn::ModuleHolder<Impl>(DenoiserOptions{}) {}
  explicit Denoiser(DenoiserOptions o) : torch::nn::ModuleHolder<Impl>(std::move(o)) {}
};

/// Refuses a label dropout that is not a probability (TrainerOptions::label_dropout).
inline void check_label_dropout(double p) {
  if (!(p >= 0 && p <= 1)) throw std::invalid_argument(fmt::format("label_dropout must be in [0, 1], got {}", p));
}

/// Labels with label dropout applied: each replaced by K ("no label") with probability `p`, drawn
/// from the default generator (one uniform per label).
inline at::Tensor drop_labels(const at::Tensor& y, int64_t num_classes, double p) {
  check_label_dropout(p);
  if (p == 0) return y;
  return at::where(at::rand({y.size(0)}, y.options().dtype(at::kFloat)).lt(p), at::full_like(y, num_classes), y);
}

namespace detail {
/// Puts a module in eval mode for a scope and restores its mode after.
struct EvalModeGuard {
  explicit EvalModeGuard(torch::nn::Module& m) : m_(m), was_(m.is_training()) { m_.eval(); }
  ~EvalModeGuard() { m_.train(was_); }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;
  torch::nn::Module& m_;
  bool was_;
};
}  // namespace detail

namespace detail {
/// What sampling needs of sampler type Smp, with its type erased (sample() below).
struct SamplerCalls {
  const char* label;
  int64_t default_steps;
  bool sigma_spaced;  // its spacing lays steps out in σ (spacing::SigmaSpacing): exact σ on a continuous process
  std::function<std::string(int64_t T, int64_t steps)> refusal;  // "" or why
  std::function<const Process&(AnyDenoiser&, int64_t steps, bool exact)> process;
  std::function<at::Tensor(const Process&, const Denoise&, at::Tensor, const SampleOptions&, const DenoiseAt&)> run;
};

template <sampler::Sampler Smp>
SamplerCalls sampler_calls() {
  using P = typename Smp::Spacing;
  return {sampler::label<Smp>(), Smp::default_steps, sampler::spacing::SigmaSpacing<P>,
          [](int64_t T, int64_t steps) { return sampler::spacing::refusal<P>(T, steps, sampler::label<Smp>()); },
          [](AnyDenoiser& d, int64_t steps, bool exact) -> const Process& {
            if (!exact) return detail::respaced<P>(d, steps);
            if constexpr (sampler::spacing::SigmaSpacing<P>)
              return d.derived_process(fmt::format("{}:{}:exact", P::name, steps),
                                       [steps](const Process& p) { return p.at_sigmas(P::sigmas(p, steps)); });
            throw std::invalid_argument(fmt::format("sample: the {} sampler visits trained steps ({} spacing); exact σ "
                                                    "between them are for the σ-spaced samplers",
                                                    sampler::label<Smp>(), P::name));
          },
          [](const Process& p, const Denoise& f, at::Tensor x, const SampleOptions& so, const DenoiseAt& g) {
            return sampler::run<Smp>(p, f, std::move(x), so, g);
          }};
}

/// The whole of sample() but the sampler's own calls (compiled once, whatever the preset and sampler).
inline at::Tensor sample(AnyDenoiser& d, int64_t n, const SampleOptions& so, const SamplerCalls& smp) {
  if (n < 1) throw std::invalid_argument(fmt::format("sample: n must be >= 1, got {}", n));
  const auto& o = d.denoiser_options();
  const int64_t T = d.process().size();
  if (so.steps() < 0) throw std::invalid_argument(fmt::format("sample: steps must be >= 0 (0: the sampler's default), got {}", so.steps()));
  const int64_t steps = so.steps() > 0 ? so.steps() : std::min<int64_t>(smp.default_steps, T);
  if (auto why = smp.refusal(T, steps); !why.empty())
    throw std::invalid_argument(fmt::format("sample: {} steps: {}", steps, why));
  // A continuous process (EDM's) has no steps to snap to: the σ-spaced samplers take their σ exactly.
  const bool exact = so.exact_sigmas() || (d.process().is_continuous() && smp.sigma_spaced);
  const auto& p = smp.process(d, steps, exact);
  const auto param = d.networks().parameters().front();
  const std::vector<int64_t> shape{n, o.channels(), o.image_size(), o.image_size()};
  at::Tensor x;
  if (so.noise().defined()) {
    if (so.noise().sizes() != at::IntArrayRef(shape))
      throw std::invalid_argument(fmt::format("sample: the starting noise must be [n, C, H, W] = {}, got {}",
                                              io::shape_str(shape), io::shape_str(so.noise().sizes())));
    x = so.noise().to(param.device(), param.scalar_type());
  } else {
    x = at::randn(shape, param.options().requires_grad(false));
  }
  at::Tensor y;
  if (so.labels().defined()) {
    d.check_labels(so.labels(), n, "sample");
    y = so.labels().to(param.device(), at::kLong);
  }
  const double w = so.guidance();
  if (!(w >= 0 && w <= 1e6)) throw std::invalid_argument(fmt::format("sample: guidance must be in [0, 1e6], got {}", w));
  if (w != 0 && !y.defined()) throw std::invalid_argument("sample: guidance needs class labels (SampleOptions::labels)");
  c10::NoGradGuard no_grad;
  detail::EvalModeGuard mode(d.networks());
  const bool clip = so.clip_denoised();
  // Off the run's steps (EDM's churn): the training process at that σ, the network seeing the nearest
  // trained step, or the interpolated one with exact_sigmas.
  const auto at_sigma = [&](const at::Tensor& x_t, double sigma) {
    const auto q = d.process().at_sigma(sigma, exact);
    const auto t = at::zeros({x_t.size(0)}, x_t.options().dtype(at::kLong));
    return y.defined() ? d.guided(q, x_t, t, clip, y, w) : d.denoise(q, x_t, t, clip);
  };
  x = smp.run(
      p,
      [&](const at::Tensor& x_t, const at::Tensor& t) {
        return y.defined() ? d.guided(p, x_t, t, clip, y, w) : d.denoise(p, x_t, t, clip);
      },
      x, so, at_sigma);
  return x.clamp(-1, 1);
}
}  // namespace detail

/// n images in [−1, 1] from denoiser `d` with sampler Smp, on the device of d's parameters.
template <sampler::Sampler Smp>
at::Tensor sample(AnyDenoiser& d, int64_t n, const SampleOptions& so = {}) {
  static const detail::SamplerCalls calls = detail::sampler_calls<Smp>();
  return detail::sample(d, n, so, calls);
}
template <sampler::Sampler Smp, class S, class Topo>
at::Tensor sample(Denoiser<S, Topo>& d, int64_t n, const SampleOptions& so = {}) {
  return sample<Smp>(static_cast<AnyDenoiser&>(*d), n, so);
}

}  // namespace casdm
