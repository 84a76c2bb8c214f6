#pragma once
// Training any casdm model: AdamW, EMA copies of the weights, optional gradient clipping and
// micro-batching, and checkpoints that continue a run exactly.
//
//   casdm::train::Trainer<casdm::presets::CasDM> trainer(model, casdm::train::TrainerOptions()
//       .optimizer(casdm::train::AdamWOptions().lr(1e-4)).ema_rates({0.9999}).grad_clip(1.0));
//   auto report = trainer.step(x0);                       // one optimiser step
//   trainer.step(x0, labels);                             // a class-conditional model's (label dropout inside)
//   trainer.save("run/ckpt.pt", {{"preset", "CasDM"}});   // model, EMA, optimiser, step, RNG
//   trainer.load("run/ckpt.pt");                          // strict: refuses another model or size
//
// A checkpoint is a torch.save-format dict (Python's torch.load reads it) in format 2
// (train/checkpoint.hpp, docs/checkpoints.md): tensors "model.*", "ema.<i>.*", "optim.*", "rng.cpu"
// (and "rng.cuda"), the model's and the denoiser's identities, the step, and one JSON document of the
// settings (denoiser, objective, trainer, and the caller's under "run").
//
// Exactness: with the same data per step, 2N steps straight and N steps + save + load + N steps
// give bit-identical parameters (tests/test_trainer.cpp), because the checkpoint holds everything
// the step consumes: weights, EMA, optimiser moments and counts, and the default generators'
// states (t, ε and dropout are drawn from them).
#include "casdm/topology/options_io.hpp"
#include "casdm/denoiser.hpp"
#include "casdm/io/files.hpp"
#include "casdm/io/tensor_file.hpp"
#include "casdm/loss/set.hpp"
#include "casdm/net/flops.hpp"
#include "casdm/net/unet.hpp"
#include "casdm/train/checkpoint.hpp"
#include "casdm/train/optim.hpp"

#include <ATen/Context.h>
#include <ATen/core/Generator.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::train {

/// What data-parallel training needs from its process group: train/distributed.hpp implements it
/// over PyTorch's c10d (ProcessGroupGloo); the trainer itself includes no c10d header.
/// A training batch: images in [−1, 1] and, for a class-conditional model, their labels.
struct Batch {
  at::Tensor images, labels;
};

class GradientSync {
 public:
  virtual ~GradientSync() = default;
  virtual int64_t rank() const = 0;
  virtual int64_t world_size() const = 0;
  /// Replaces each tensor by its mean over the ranks (in place; the same list on every rank).
  virtual void average(std::vector<at::Tensor>& tensors) = 0;
  /// Copies rank 0's tensors into every rank's (in place).
  virtual void broadcast(std::vector<at::Tensor>& tensors) = 0;
  /// The largest of each value over the ranks (one small collective).
  virtual std::vector<double> max(std::vector<double> values) = 0;
  virtual void barrier() = 0;

  /// Averaging that overlaps the backward pass (optional; the default waits for the end): the
  /// trainer calls begin() before a step's last backward, gradient_ready(i, g) as parameter i's
  /// gradient for the step is complete (g: the sum over the step's micro-batches), and finish()
  /// after it, which leaves the averages in `grads` (the same list on every rank).
  virtual void begin(const std::vector<at::Tensor>& /*grads*/) {}
  virtual void gradient_ready(size_t /*i*/, const at::Tensor& /*g*/) {}
  virtual void finish(std::vector<at::Tensor>& grads) { average(grads); }

  /// The largest `value` of any rank (a stop signal every rank agrees on).
  double max_of(double value) { return max({value}).at(0); }
  /// Whether `value` is the same on every rank (a checksum).
  bool same_everywhere(double value) {
    const auto m = max({value, -value});
    return m[0] == -m[1];  // the largest equals the smallest
  }
};

struct TrainerOptions {
  TORCH_ARG(AdamWOptions, optimizer) = AdamWOptions{};
  /// One EMA copy of the weights per rate (improved-diffusion: 0.9999).
  TORCH_ARG(std::vector<double>, ema_rates) = std::vector<double>{0.9999};
  /// Largest global L2 norm of the gradients; 0 turns clipping off.
  TORCH_ARG(double, grad_clip) = 0.0;
  /// Split each batch into chunks of this many images whose gradients are accumulated (same
  /// update, less memory); 0 means the whole batch at once.
  TORCH_ARG(int64_t, micro_batch) = 0;
  /// A step whose loss or gradients are not finite is skipped (no update, no EMA); this many in a
  /// row stop training with NonFiniteError. 1 stops at the first.
  TORCH_ARG(int64_t, max_nonfinite_steps) = 3;
  /// Class-conditional models (DenoiserOptions::num_classes > 0): the probability that a training
  /// label is replaced by "no label" (classifier-free guidance learns the unconditional model from
  /// these; Ho & Salimans 2022 use 0.1–0.2). A resumed run may change it (resume_changes()).
  TORCH_ARG(double, label_dropout) = 0.1;
  /// Mixed precision of the networks (Denoiser::precision): at::kBFloat16 runs them under autocast
  /// in training and in the EMA copies' sampling; weights, optimiser state, EMA, the process math
  /// and the losses stay float32. at::kFloat: off.
  TORCH_ARG(at::ScalarType, precision) = at::kFloat;
  /// Dynamic loss scaling (LossScaler): on for at::kHalf whatever this says (float16 gradients
  /// underflow without it); true also turns it on in other precisions (tests, debugging).
  TORCH_ARG(bool, loss_scaling) = false;
  TORCH_ARG(LossScalerOptions, loss_scaler) = LossScalerOptions{};
  /// Data-parallel training: every rank passes the same global batch to step(), takes its shard
  /// (rank r: images r·n/W … (r+1)·n/W − 1) with the timesteps and noise drawn for the whole batch,
  /// and the gradients and loss terms are averaged over the ranks before clipping — the same step
  /// as one process on the whole batch, up to the order of float sums. Parameters are broadcast
  /// from rank 0 when the trainer is made. nullptr: one process.
  TORCH_ARG(std::shared_ptr<GradientSync>, sync) = nullptr;
  /// Data-parallel: every this many steps the ranks compare a checksum of the weights and the EMA
  /// copies, and stop with an error if they drifted apart (0: never).
  TORCH_ARG(int64_t, sync_check_every) = 100;
};

/// Training stopped: `max_nonfinite_steps` steps in a row had a non-finite loss or gradient.
struct NonFiniteError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
inline const char* nonfinite_name(double x) { return std::isnan(x) ? "nan" : x > 0 ? "inf" : "-inf"; }
inline std::optional<at::Generator> cuda_generator(const c10::Device& d) {
  if (!d.is_cuda()) return std::nullopt;
  return at::globalContext().defaultGenerator(d);
}
}  // namespace detail

/// The default generators — the CPU one, and the CUDA one of `device` — as a part of a checkpoint
/// (StateDict): tensors "cpu" and "cuda" (the latter where the device is CUDA).
class Generators {
 public:
  explicit Generators(const c10::Device& device) : device_(device) {}
  StateDict state_dict() const {
    StateDict sd;
    at::Generator cpu = at::detail::getDefaultCPUGenerator();
    {
      std::lock_guard<std::mutex> lock(cpu.mutex());
      sd.tensors.emplace("cpu", cpu.get_state());
    }
    if (auto g = detail::cuda_generator(device_)) {
      std::lock_guard<std::mutex> lock(g->mutex());
      sd.tensors.emplace("cuda", g->get_state());
    }
    return sd;
  }
  void check_state_dict(const StateDict& sd, const std::string& source) const {
    if (!sd.tensors.count("cpu")) throw std::runtime_error(source + " lacks the generator state rng.cpu");
  }
  /// A CUDA state is restored where both the checkpoint and this device have one.
  void load_state_dict(const StateDict& sd, const std::string& source) {
    check_state_dict(sd, source);
    at::Generator cpu = at::detail::getDefaultCPUGenerator();
    {
      std::lock_guard<std::mutex> lock(cpu.mutex());
      cpu.set_state(sd.tensors.at("cpu"));
    }
    if (auto g = detail::cuda_generator(device_); g && sd.tensors.count("cuda")) {
      std::lock_guard<std::mutex> lock(g->mutex());
      g->set_state(sd.tensors.at("cuda"));
    }
  }

 private:
  c10::Device device_;
};

/// Saves the default CPU generator's state (and the CUDA one of `device`) and restores it on scope
/// exit: work inside (e.g. sample grids during training) leaves the training run's draws as they were.
class GeneratorStateGuard {
 public:
  explicit GeneratorStateGuard(const c10::Device& device = c10::Device(c10::kCPU))
      : generators_(device), saved_(generators_.state_dict()) {}
  GeneratorStateGuard(const GeneratorStateGuard&) = delete;
  GeneratorStateGuard& operator=(const GeneratorStateGuard&) = delete;
  ~GeneratorStateGuard() { generators_.load_state_dict(saved_, "GeneratorStateGuard"); }

 private:
  Generators generators_;
  StateDict saved_;
};

/// The parameters of model `m` that train (its denoiser's) and those frozen in its objective (a
/// feature loss's metric network), counted apart.
template <class M>
std::pair<int64_t, int64_t> parameter_counts(const M& m) {
  std::pair<int64_t, int64_t> n{0, 0};
  for (const auto& p : m->denoiser()->parameters()) n.first += p.numel();
  for (const auto& p : m->objective()->parameters()) n.second += p.numel();
  return n;
}

/// What training a denoiser of topology Topo with options `o` holds in memory, from arithmetic
/// (net::cost; nothing is built): its parameters as float32 weights, gradients, AdamW's two moments
/// and `ema_copies` EMA copies, and the activations a step of `images` images keeps for backward
/// (θ's and, for a cascaded topology, φ's; an estimate).
struct MemoryNeed {
  int64_t parameters = 0;
  double state_bytes = 0, activation_bytes = 0;
  double total() const { return state_bytes + activation_bytes; }
};
template <class Topo>
MemoryNeed memory_need(const DenoiserOptions& o, int64_t images, size_t ema_copies) {
  const int64_t C = o.channels();
  std::vector<net::Cost> nets;
  auto add = [&]<class Arch>(const net::UNetOptions& options, std::pair<int64_t, int64_t> channels) {
    const auto configured = Arch::configure(options, channels.first, channels.second);
    nets.push_back(net::cost(configured, channels.first, channels.second, configured.resample()));
  };
  if constexpr (requires { typename Topo::theta_arch; Topo::theta_channels(C); })
    add.template operator()<typename Topo::theta_arch>(o.theta_net(), Topo::theta_channels(C));
  else  // a topology of a user's that does not say: counted as an ε-only θ
    add.template operator()<net::arch::UNet>(o.theta_net(), {C, C});
  if constexpr (requires { typename Topo::phi_arch; })
    add.template operator()<typename Topo::phi_arch>(o.phi_net_options(), Topo::phi_channels(C));
  MemoryNeed m;
  double activations = 0;
  for (const auto& n : nets) m.parameters += n.parameters, activations += static_cast<double>(n.activations);
  m.state_bytes = static_cast<double>(m.parameters) * 4.0 * (4.0 + static_cast<double>(ema_copies));
  m.activation_bytes = activations * 4.0 * static_cast<double>(images);
  return m;
}

/// Refuses, from arithmetic and before anything is allocated (memory_need), a model and a batch of
/// `images` per step (or micro-batch) that this machine's memory cannot hold, saying what they need.
template <class Topo>
void check_memory(const DenoiserOptions& o, int64_t images, size_t ema_copies) {
  const auto m = memory_need<Topo>(o, images, ema_copies);
  const double memory = io::physical_memory();
  if (m.total() > memory)
    throw std::invalid_argument(fmt::format(
        "a training step needs about {:.3g} GB: {} parameters ({:.3g} GB with their gradients, AdamW's moments and {} "
        "EMA copies) and the activations of {} images of {}x{} ({:.3g} GB); this machine has {:.3g} GB (fewer images "
        "per step or micro-batch, or a smaller size or width)",
        m.total() / 1e9, m.parameters, m.state_bytes / 1e9, ema_copies, images, o.image_size(), o.image_size(),
        m.activation_bytes / 1e9, memory / 1e9));
}

/// Trains model M (a casdm::Model): the optimiser and the EMA copies work on its denoiser, the
/// objective is the model's own, held once.
template <class M>
class Trainer {
 public:
  using Impl = typename M::Impl;
  using Denoiser = typename M::Denoiser;

  Trainer(M model, TrainerOptions o = {})
      : model_(std::move(model)), options_(std::move(o)),
        optimizer_(trainable_parameters(*model_->denoiser()), options_.optimizer()) {
    if (options_.micro_batch() < 0)
      throw std::invalid_argument(fmt::format("micro_batch must be >= 0, got {}", options_.micro_batch()));
    if (options_.grad_clip() < 0)
      throw std::invalid_argument(fmt::format("grad_clip must be >= 0 (0: off), got {}", options_.grad_clip()));
    if (options_.max_nonfinite_steps() < 1)
      throw std::invalid_argument(fmt::format("max_nonfinite_steps must be >= 1, got {}", options_.max_nonfinite_steps()));
    check_label_dropout(options_.label_dropout());
    const auto& rates = options_.ema_rates();
    for (size_t i = 0; i < rates.size(); ++i)
      if (std::find(rates.begin(), rates.begin() + static_cast<std::ptrdiff_t>(i), rates[i]) != rates.begin() + static_cast<std::ptrdiff_t>(i))
        throw std::invalid_argument(fmt::format("ema_rates: {} is given twice (one EMA copy per rate)", rates[i]));
    auto& live = *model_->denoiser();
    live.precision(options_.precision());  // the EMA copies, cloned below, keep it
#if !CASDM_TORCH_AT_LEAST(2, 4)
    if (options_.precision() == at::kHalf && !device().is_cuda())
      throw std::invalid_argument("precision float16: this LibTorch's CPU autocast runs bfloat16 only; train in float16 "
                                  "on CUDA, or in bfloat16");
#endif
    if (options_.loss_scaling() || options_.precision() == at::kHalf) scaler_.emplace(options_.loss_scaler());
    if (const auto& sync = options_.sync()) {  // every rank starts from rank 0's weights
      auto tensors = live.parameters();
      for (auto& b : live.buffers()) tensors.push_back(b);
      {
        at::NoGradGuard no_grad;
        sync->broadcast(tensors);
      }
      // Each parameter reports its gradient to the group as the last backward of a step completes
      // it (a leaf's hook sees the sum of every use; the earlier micro-batches' sum is in .grad).
      const auto& params = optimizer_.parameters();
      for (size_t i = 0; i < params.size(); ++i) {
        auto p = params[i].second;
        p.register_hook([i, state = overlap_, weak = std::weak_ptr<GradientSync>(sync)](const at::Tensor& g) {
          if (i < state->used.size()) state->used[i] = 1;
          if (!state->active) return g;
          if (auto s = weak.lock()) s->gradient_ready(i, state->grads[i] + g);
          return g;
        });
      }
    }
    for (double r : options_.ema_rates()) {
      Denoiser copy(std::dynamic_pointer_cast<typename Denoiser::Impl>(live.clone()));
      copy->eval();
      for (auto& p : copy->parameters()) p.requires_grad_(false);
      ema_updates_.emplace_back(live, *copy, r);
      emas_.push_back(std::move(copy));
    }
  }

  M& model() { return model_; }
  /// The EMA copy of the denoiser with rate options().ema_rates()[i] (eval mode): sample from it
  /// with casdm::sample<Sampler>(trainer.ema(i), n) or sample_ema().
  Denoiser& ema(size_t i = 0) { return emas_.at(i); }
  /// n images from EMA copy i with the model's sampler.
  at::Tensor sample_ema(int64_t n, const SampleOptions& so = {}, size_t i = 0) {
    return casdm::sample<typename Impl::sampler_type>(ema(i), n, so);
  }
  AdamW& optimizer() { return optimizer_; }
  const TrainerOptions& options() const { return options_; }
  /// Optimiser steps taken (restored by load()).
  int64_t step_count() const { return step_; }
  /// The gradients' global norm before clipping at the last step.
  const at::Tensor& last_grad_norm() const { return grad_norm_; }
  /// Whether the last step was skipped for a non-finite loss or gradient, and why ("loss term 'mu'
  /// is nan", "gradients are not finite (norm inf)"); "" after a good step.
  const std::string& last_skip() const { return last_skip_; }
  /// Steps skipped so far in this run (kept by checkpoints).
  int64_t skipped_steps() const { return skipped_; }
  /// The loss scaler of a float16 run (or one asked for by TrainerOptions::loss_scaling); else null.
  const LossScaler* loss_scaler() const { return scaler_ ? &*scaler_ : nullptr; }

  /// One optimiser step on a batch x0 ∈ [−1, 1]; returns the batch's loss terms (detached; with
  /// micro-batches, their size-weighted mean). A class-conditional model (DenoiserOptions::num_classes)
  /// takes the batch's labels y (int64 [N] in [0, K), checked where the data set is read, not here),
  /// each replaced by "no label" with probability TrainerOptions::label_dropout (drawn after t and ε,
  /// for the whole batch, so unconditional runs draw exactly what they drew before).
  /// Data-parallel (options().sync()): x0 is the global batch, the same on every rank.
  loss::LossReport step(const Batch& b) { return step(b.images, b.labels); }
  loss::LossReport step(const at::Tensor& x0, const at::Tensor& y = {}) {
    model_->train();
    optimizer_.zero_grad();
    const auto shard = draw(x0, y);  // t, ε and dropped labels for the whole batch; this rank's part
    loss::LossReport out = forward_backward(shard);
    const auto& sync = options_.sync();
    if (sync) average_over_ranks(*sync, out);
    const double scale = scaler_ ? scaler_->scale() : 1.0;
    if (scaler_) {  // exact: the scale is a power of two
      c10::NoGradGuard no_grad;
      if (auto grads = grads_of(optimizer_.parameters()); !grads.empty()) at::_foreach_mul_(grads, 1.0 / scale);
    }
    grad_norm_ = options_.grad_clip() > 0 ? clip_grad_norm(optimizer_.parameters(), options_.grad_clip())
                                          : grad_norm(optimizer_.parameters());
    ++step_;
    // One host sync: the loss and the gradients' norm are finite, or the step changes nothing.
    const auto finite =
        at::isfinite(at::stack({out.total.to(at::kFloat), grad_norm_.to(out.total.device(), at::kFloat)})).to(at::kCPU);
    const bool loss_ok = finite[0].item<bool>(), grads_ok = finite[1].item<bool>();
    // Gradients that are not finite back the scale off, whatever made them so (GradScaler: a non-finite
    // loss gives non-finite gradients too).
    if (scaler_ && !(loss_ok && grads_ok)) scaler_->update(false);
    if (scaler_ && loss_ok && !grads_ok) {  // float16 overflow: the step skipped at a smaller scale
      ++skipped_;
      last_skip_ = fmt::format("the float16 gradients overflowed at loss scale {}; loss scale now {}", scale,
                               scaler_->scale());
      return out;
    }
    if (!loss_ok || !grads_ok) {
      skip(out);
      return out;
    }
    if (scaler_) scaler_->update(true);
    optimizer_.step();
    for (auto& e : ema_updates_) e.update();
    consecutive_skips_ = 0;
    last_skip_.clear();
    if (sync && options_.sync_check_every() > 0 && step_ % options_.sync_check_every() == 0) check_in_sync(*sync);
    return out;
  }

  /// Data-parallel: stops with an error naming the step if the ranks' weights or EMA copies differ
  /// (a float64 sum of every element, compared across ranks).
  void check_in_sync(GradientSync& sync) const {
    at::NoGradGuard no_grad;
    double sum = 0;
    for (const auto& p : model_->denoiser()->parameters()) sum += p.sum(at::kDouble).template item<double>();
    for (const auto& e : emas_)
      for (const auto& p : e->parameters()) sum += p.sum(at::kDouble).template item<double>();
    if (!sync.same_everywhere(sum))
      throw std::runtime_error(fmt::format("step {}: the weights of rank {} differ from the other ranks' (checksum {}); "
                                           "data-parallel training cannot go on", step_, sync.rank(), sum));
  }

  /// Writes a checkpoint atomically; `extra` goes into the metadata ("casdm.<key>"). `before_rename`
  /// is for tests of an interrupted write.
  void save(const std::filesystem::path& path, const std::map<std::string, std::string>& extra = {},
            const std::function<void()>& before_rename = {}) const {
    io::TensorFile f;
    f.meta["format"] = checkpoint_format;
    f.meta["identity"] = Impl::identity();
    f.meta["denoiser"] = Denoiser::Impl::identity();
    f.meta["step"] = fmt::format("{}", step_);
    f.meta["config"] = config(extra).dump();
    detail::seal(f);
    // Each part's tensors under its prefix; their settings are in config().
    auto put = [&](const std::string& prefix, const StateDict& sd) {
      for (const auto& [k, v] : sd.tensors) f.tensors.emplace(prefix + k, v);
    };
    put("model.", model_state_dict());
    put("ema.", ema_state_dict());
    put("optim.", optimizer_.state_dict());
    put("rng.", Generators(device()).state_dict());
    if (auto bad = io::first_nonfinite(f.tensors); !bad.empty())
      throw std::runtime_error(fmt::format("not writing {}: tensor '{}' is not finite (the run diverged)",
                                           path.string(), bad));
    io::write_tensor_file(path, f, before_rename);
  }

  /// The settings a checkpoint keeps (its casdm.config): the denoiser's options, the objective's
  /// (feature-loss side and weights, every term's λ), the trainer's and its state, and `extra`
  /// (the caller's: "preset", a program's "args.*") under "run".
  nlohmann::json config(const std::map<std::string, std::string>& extra = {}) const {
    const auto& d = model_->denoiser()->options;
    const auto& o = options_.optimizer();
    nlohmann::json trainer = {{"lr", o.lr()}, {"weight_decay", o.weight_decay()}, {"grad_clip", options_.grad_clip()},
                              {"micro_batch", options_.micro_batch()}, {"skipped_steps", skipped_}};
    if (d.num_classes() > 0) trainer["label_dropout"] = options_.label_dropout();
    trainer.update(ema_state_dict().values);  // the parts' settings: the EMA rates, the loss scale
    if (scaler_) trainer.update(scaler_->state_dict().values);
    nlohmann::json run = nlohmann::json::object();
    for (const auto& [k, v] : extra) run[k] = v;
    const auto& objective = *model_->objective();
    return {{"denoiser", denoiser_config(d)},
            {"objective", objective_config(objective.options, objective.weights(), objective.checksum())},
            {"trainer", std::move(trainer)},
            {"run", std::move(run)}};
  }

  /// What the last load() found changed in the objective's or the trainer's settings against the
  /// checkpoint ("loss_weight.x0: '1' vs '0.5'", checkpoint first): a resume may change those, and
  /// the program reports them. Empty when nothing changed.
  const std::vector<std::string>& resume_changes() const { return resume_changes_; }

  /// Restores a checkpoint written by save() of a model
  /// with the same identity (any sampler), denoiser options and EMA rates; the objective's settings
  /// (feature side and weights path, loss weights) and label dropout may differ (resume_changes()).
  /// Everything is checked before anything changes: a refused file leaves the trainer as it was.
  void load(const std::filesystem::path& path) { load(read_checkpoint(path)); }

  void load(const CheckpointInfo& c) {
    const auto src = c.path.string();
    auto& live = *model_->denoiser();
    if (c.is_model_file())
      throw std::runtime_error(src + " is a model file (one denoiser's weights), not a checkpoint: it has no "
                                     "optimiser state or step to resume from");
    if (!holds_model<Impl>(c))
      throw std::runtime_error(fmt::format("{} holds another model{}: {}, not {}", src,
                                           c.get("preset").empty() ? "" : " (preset " + c.get("preset") + ")",
                                           c.model_type, Impl::identity()));
    if (auto diff = options_differences(c.denoiser_options, live.options); !diff.empty())
      throw std::runtime_error(fmt::format("{} was trained with other model options (checkpoint vs this run):\n  {}",
                                           src, fmt::join(diff, "\n  ")));
    // Each part's state: its tensors (by prefix) and the trainer section's settings.
    const auto values = trainer_values(c);
    const StateDict model{section(c.file, "model."), {}}, ema{section(c.file, "ema."), values},
        optim{section(c.file, "optim."), values}, rng{section(c.file, "rng."), values}, scale{{}, values};
    Generators generators(device());
    check_ema_state_dict(ema, src);
    if (auto want = c.get("external.checksum"), have = model_->objective()->checksum(); !want.empty() && want != have)
      throw std::runtime_error(fmt::format(
          "{}: the feature network's weights differ from those the run was trained with (checksum {} in the "
          "checkpoint, {} now; were the files in {} replaced?)",
          src, want, have.empty() ? "none" : have, model_->objective()->options.feature_weights()));
    if (auto why = io::state_mismatch(live, model.tensors, src + " (model)"); !why.empty()) throw std::runtime_error(why);
    generators.check_state_dict(rng, src);
    if (auto bad = io::first_nonfinite(c.file.tensors); !bad.empty())
      throw std::runtime_error(fmt::format("{} holds non-finite values in '{}'; it cannot be resumed", src, bad));
    int64_t skipped = 0;
    if (const auto s = c.get("trainer.skipped_steps", "0");
        std::from_chars(s.data(), s.data() + s.size(), skipped).ptr != s.data() + s.size() || skipped < 0)
      throw std::runtime_error(fmt::format("{} has a damaged casdm.trainer.skipped_steps: '{}'", src, s));
    if (scaler_) scaler_->check_state_dict(scale, src);
    optimizer_.check_state_dict(optim, src);
    // Everything checked: nothing below refuses.
    optimizer_.load_state_dict(optim, src);
    io::load_state_strict(live, model.tensors, src);
    load_ema_state_dict(ema, src);
    generators.load_state_dict(rng, src);
    if (scaler_) scaler_->load_state_dict(scale, src);
    resume_changes_ = changes_from(c);
    step_ = c.step;
    skipped_ = skipped;
    consecutive_skips_ = 0;
    last_skip_.clear();
  }

 private:
  c10::Device device() const { return model_->parameters().front().device(); }

  StateDict model_state_dict() const {
    StateDict sd;
    for (const auto& [k, v] : io::state_of(*model_->denoiser())) sd.tensors.emplace(k, v);
    return sd;
  }

  /// The EMA copies as a part: tensors "<i>.<name>" (copy i), the setting "ema_rates".
  StateDict ema_state_dict() const {
    StateDict sd{{}, {{"ema_rates", options_.ema_rates()}}};
    for (size_t i = 0; i < emas_.size(); ++i)
      for (const auto& [k, v] : io::state_of(*emas_[i])) sd.tensors.emplace(fmt::format("{}.{}", i, k), v);
    return sd;
  }
  void check_ema_state_dict(const StateDict& sd, const std::string& src) const {
    std::vector<std::string> stored;
    std::vector<double> rates;
    for (const auto& r : sd.values.value("ema_rates", nlohmann::json::array())) {
      stored.push_back(r.is_string() ? r.get<std::string>() : io::number_str(r.get<double>()));
      rates.push_back(r.is_string() ? std::stod(r.get<std::string>()) : r.get<double>());
    }
    if (rates != options_.ema_rates()) {
      std::vector<std::string> want;
      for (double r : options_.ema_rates()) want.push_back(io::number_str(r));
      throw std::runtime_error(fmt::format("{} has EMA rates {{{}}}, this run asks for {{{}}}", src,
                                           fmt::join(stored, ","), fmt::join(want, ",")));
    }
    for (size_t i = 0; i < emas_.size(); ++i)
      if (auto why = io::state_mismatch(*emas_[i], copy_of(sd, i), fmt::format("{} (EMA {})", src, i)); !why.empty())
        throw std::runtime_error(why);
  }
  void load_ema_state_dict(const StateDict& sd, const std::string& src) {
    check_ema_state_dict(sd, src);
    for (size_t i = 0; i < emas_.size(); ++i) io::load_state_strict(*emas_[i], copy_of(sd, i), src);
  }
  static std::map<std::string, at::Tensor> copy_of(const StateDict& sd, size_t i) {
    std::map<std::string, at::Tensor> out;
    const auto prefix = fmt::format("{}.", i);
    for (const auto& [k, v] : sd.tensors)
      if (k.rfind(prefix, 0) == 0) out.emplace(k.substr(prefix.size()), v);
    return out;
  }

  /// A checkpoint's trainer settings as its parts read them: the trainer section as text, and the EMA rates.
  static nlohmann::json trainer_values(const CheckpointInfo& c) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : c.meta)
      if (k.rfind("trainer.", 0) == 0) j[k.substr(8)] = v;
    j["ema_rates"] = c.ema_rates();
    return j;
  }

  /// The objective's and trainer's settings that differ from checkpoint `c`'s (see resume_changes);
  /// λ compared as used: a term a checkpoint does not list had its type's weight.
  std::vector<std::string> changes_from(const CheckpointInfo& c) const {
    std::vector<std::string> out;
    const auto& now = model_->objective()->options;
    auto changed = [&](const char* key, const std::string& before, const std::string& after) {
      if (before != after) out.push_back(fmt::format("{}: '{}' vs '{}'", key, before, after));
    };
    changed("feature_size", std::to_string(c.objective_options.feature_size()), std::to_string(now.feature_size()));
    changed("feature_weights", c.objective_options.feature_weights(), now.feature_weights());
    if (model_->denoiser()->options.num_classes() > 0)
      changed("label_dropout", c.get("trainer.label_dropout", "0.1"), io::number_str(options_.label_dropout()));
    const auto defaults = Impl::losses_type::describe();
    const auto& stored = c.objective_options.loss_weights();
    for (const auto& [name, w] : model_->objective()->weights()) {
      double before = 0;
      if (auto it = stored.find(name); it != stored.end())
        before = it->second;
      else
        for (const auto& [n, d] : defaults) before = n == name ? d : before;
      if (before != w)
        out.push_back(fmt::format("loss_weight.{}: '{}' vs '{}'", name, io::number_str(before), io::number_str(w)));
    }
    return out;
  }

  /// One step's draws and this rank's part of them.
  struct Shard {
    at::Tensor x, t, noise, labels;
    std::shared_ptr<const Process> process;  // what t indexes (a continuous schedule's batch), or null
  };

  /// Checks a batch, draws t and ε for all of it (then the label dropout, so unconditional runs draw
  /// what they drew before) and returns this rank's shard (images r·n/W … (r+1)·n/W − 1).
  Shard draw(const at::Tensor& x0, const at::Tensor& y) {
    const auto& sync = options_.sync();
    const int64_t world = sync ? sync->world_size() : 1, rank = sync ? sync->rank() : 0;
    model_->denoiser()->check_images(x0, "Trainer::step");
    if (x0.size(0) % world != 0)
      throw std::invalid_argument(fmt::format("Trainer::step: a batch of {} images does not divide among {} ranks",
                                              x0.size(0), world));
    const auto drawn = model_->denoiser()->draw_training(x0.size(0), x0.options());
    const auto& t_all = drawn.t;
    const auto noise_all = at::randn_like(x0);
    const int64_t K = model_->denoiser()->options.num_classes();
    if (K > 0 && !y.defined())
      throw std::invalid_argument("Trainer::step: a class-conditional model (num_classes > 0) trains on labelled batches");
    if (y.defined() && (K < 1 || y.dim() != 1 || y.size(0) != x0.size(0)))
      throw std::invalid_argument(K < 1 ? std::string("Trainer::step: labels given to an unconditional model (num_classes 0)")
                                        : fmt::format("Trainer::step: expected one label per image ({}), got {}", x0.size(0),
                                                      io::shape_str(y.sizes())));
    const auto y_all = y.defined() ? drop_labels(y.to(x0.device(), at::kLong), K, options_.label_dropout()) : at::Tensor{};
    const int64_t lo = x0.size(0) / world * rank, n = x0.size(0) / world;
    return {x0.slice(0, lo, lo + n), t_all.slice(0, lo, lo + n), noise_all.slice(0, lo, lo + n),
            y_all.defined() ? y_all.slice(0, lo, lo + n) : at::Tensor{}, drawn.process};
  }

  /// The loss and its gradients over the shard, in micro-batches; with a process group the last
  /// backward averages the gradients as it goes. Returns the loss terms (detached; with
  /// micro-batches, their size-weighted mean).
  loss::LossReport forward_backward(const Shard& b) {
    const auto& sync = options_.sync();
    const int64_t n = b.x.size(0);
    const int64_t chunk = options_.micro_batch() > 0 ? std::min(options_.micro_batch(), n) : n;
    const double scale = scaler_ ? scaler_->scale() : 1.0;
    loss::LossReport out;
    if (sync) overlap_->used.assign(optimizer_.parameters().size(), 0);
    for (int64_t s = 0; s < n; s += chunk) {
      const int64_t e = std::min(n, s + chunk);
      auto r = model_->training_losses(b.x.slice(0, s, e), b.t.slice(0, s, e), b.noise.slice(0, s, e),
                                       b.labels.defined() ? b.labels.slice(0, s, e) : at::Tensor{}, b.process.get());
      const double w = static_cast<double>(e - s) / static_cast<double>(n);
      struct Off {  // the hooks stay off outside the last backward, also when it throws
        Overlap& o;
        ~Off() { o.active = false, o.grads.clear(); }
      } off{*overlap_};
      if (sync && e == n) {  // the step's last backward: the gradients are averaged as it goes
        overlap_->grads = grads_for_sync();
        sync->begin(overlap_->grads);
        overlap_->active = true;
      }
      auto objective = chunk == n ? r.total : r.total * w;
      (scaler_ ? objective * scale : objective).backward();
      if (!out.total.defined()) {
        out.total = r.total.detach() * w;
        for (auto& [name, v] : r.terms) out.terms.emplace_back(name, v.detach() * w);
      } else {
        out.total = out.total + r.total.detach() * w;
        for (size_t i = 0; i < r.terms.size(); ++i) out.terms[i].second = out.terms[i].second + r.terms[i].second.detach() * w;
      }
    }
    return out;
  }

  /// The parameters' gradients, made zeros where a parameter has none (every rank the same list).
  std::vector<at::Tensor> grads_for_sync() {
    std::vector<at::Tensor> grads;
    for (const auto& [name, p] : optimizer_.parameters()) {
      if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
      grads.push_back(p.grad());
    }
    return grads;
  }

  /// The gradients (averaged while backward ran; see GradientSync::begin) and the loss terms,
  /// averaged over the ranks.
  void average_over_ranks(GradientSync& sync, loss::LossReport& r) {
    at::NoGradGuard no_grad;
    auto grads = grads_for_sync();
    sync.finish(grads);
    // Which parameters this rank's backward reached rides along with the loss terms' average, a flag
    // each (> 0 after it if any rank's did): one that none reached has no gradient, as in one process,
    // so AdamW leaves it be (zeros would decay its moments and apply weight decay).
    std::vector<at::Tensor> terms{r.total.reshape({1})};
    for (auto& [name, v] : r.terms) terms.push_back(v.reshape({1}).to(r.total.scalar_type()));
    const auto flags = static_cast<int64_t>(terms.size());
    const std::vector<float> used(overlap_->used.begin(), overlap_->used.end());
    terms.push_back(at::tensor(used, at::kFloat).to(r.total.options()));
    std::vector<at::Tensor> losses{at::cat(terms)};
    sync.average(losses);
    r.total = losses[0][0];
    for (size_t i = 0; i < r.terms.size(); ++i) r.terms[i].second = losses[0][static_cast<int64_t>(i + 1)];
    const auto reached = losses[0].slice(0, flags).gt(0).to(at::kCPU);
    const auto any = reached.template accessor<bool, 1>();
    const auto& params = optimizer_.parameters();
    for (int64_t i = 0; i < any.size(0) && i < static_cast<int64_t>(params.size()); ++i)
      if (!any[i]) params[static_cast<size_t>(i)].second.mutable_grad() = at::Tensor();
  }

  void skip(const loss::LossReport& r) {
    ++skipped_;
    ++consecutive_skips_;
    last_skip_.clear();
    for (const auto& [name, v] : r.terms) {
      if (const double x = v.template item<double>(); !std::isfinite(x)) {
        last_skip_ = fmt::format("loss term '{}' is {}", name, detail::nonfinite_name(x));
        break;
      }
    }
    if (last_skip_.empty()) {
      const double x = r.total.template item<double>();
      last_skip_ = std::isfinite(x) ? fmt::format("the gradients are not finite (norm {})", grad_norm_.template item<double>())
                                    : fmt::format("the loss is {}", detail::nonfinite_name(x));
    }
    if (consecutive_skips_ >= options_.max_nonfinite_steps())
      throw NonFiniteError(fmt::format("step {}: {}; {} step(s) in a row were not finite, so training stops (the "
                                       "weights are those of step {}, before them)",
                                       step_, last_skip_, consecutive_skips_, step_ - consecutive_skips_));
  }

  M model_;
  TrainerOptions options_;
  AdamW optimizer_;
  std::vector<Denoiser> emas_;
  std::vector<Ema> ema_updates_;
  int64_t step_ = 0;
  at::Tensor grad_norm_;
  struct Overlap {
    bool active = false;
    std::vector<at::Tensor> grads;  // the earlier micro-batches' sums, as the last backward starts
    std::vector<char> used;         // by parameter: whether a backward of this step reached it
  };
  std::shared_ptr<Overlap> overlap_ = std::make_shared<Overlap>();  // the gradient hooks' switch
  int64_t skipped_ = 0, consecutive_skips_ = 0;
  std::string last_skip_;
  std::optional<LossScaler> scaler_;
  std::vector<std::string> resume_changes_;
};

}  // namespace casdm::train
