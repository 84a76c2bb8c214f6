#pragma once
// The optimiser side of training: AdamW exactly as torch.optim.AdamW computes it, gradient-norm
// clipping as torch.nn.utils.clip_grad_norm_, and exponential moving averages of the weights.
//
// Both keep their state as tensors named after the parameters, so a checkpoint stores them by
// name and a load can check every name and shape. The updates use ATen's multi-tensor
// (`_foreach_*`) kernels: a handful of launches per step instead of ~10 per parameter, which is
// what bounds a small model's step on a GPU.
#include <fmt/format.h>
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace casdm::train {

/// A part of a training run's state as its checkpoint keeps it: tensors, and settings (a JSON
/// object), each named within the part. A part (the optimiser, the loss scaler, the EMA copies, the
/// generators) writes its state_dict() and reads it back in check_state_dict()/load_state_dict():
/// its names are spelled there and nowhere else. check_state_dict() refuses, in one line naming
/// `source`, what would not load, and changes nothing; load_state_dict() checks, then loads.
struct StateDict {
  std::map<std::string, at::Tensor> tensors;
  nlohmann::json values = nlohmann::json::object();
  /// values[key] as text: a number as written ("8192", "0.5"), a string as it is, "" when absent.
  std::string text(const std::string& key) const {
    auto it = values.find(key);
    if (it == values.end() || it->is_null()) return {};
    if (it->is_string()) return it->get<std::string>();
    if (it->is_number_integer()) return fmt::format("{}", it->get<int64_t>());
    if (it->is_number()) return fmt::format("{}", it->get<double>());
    return it->dump();
  }
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

/// The parameters of `m` that train (requires_grad), by dotted name.
inline NamedTensors trainable_parameters(const torch::nn::Module& m) {
  NamedTensors out;
  for (const auto& kv : m.named_parameters(true))
    if (kv.value().requires_grad()) out.emplace_back(kv.key(), kv.value());
  return out;
}

struct AdamWOptions {
  /// Paper: 1e-4, no weight decay.
  TORCH_ARG(double, lr) = 1e-4;
  TORCH_ARG(double, beta1) = 0.9;
  TORCH_ARG(double, beta2) = 0.999;
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(double, weight_decay) = 0.0;
  /// Step counts and bias corrections as tensors on the parameters' device, updated there: a step
  /// does no host arithmetic that depends on the step number, so a CUDA graph can capture it and
  /// replay it (torch.optim.AdamW's `capturable`). Same update to float rounding, same checkpoint
  /// state; reading state() then waits for the device.
  TORCH_ARG(bool, capturable) = false;
};

/// AdamW (Loshchilov & Hutter), amsgrad off, with torch.optim.AdamW's arithmetic:
///   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
///   p ← p − lr/(1−β1^k) · m / (√v / √(1−β2^k) + eps)
/// where k counts the steps in which p had a gradient (parameters without one are skipped, as
/// torch does). With `capturable`, k and the bias corrections are float64 tensors on p's device.
class AdamW {
 public:
  AdamW(NamedTensors params, AdamWOptions o = {}) : params_(std::move(params)), options_(o) {
    for (const auto& [name, p] : params_) {
      exp_avg_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
      exp_avg_sq_.push_back(at::zeros_like(p, at::MemoryFormat::Preserve));
      steps_.push_back(0);
      if (o.capturable()) device_steps_.push_back(at::zeros({}, p.options().dtype(at::kDouble)));
    }
  }

  const AdamWOptions& options() const { return options_; }
  AdamWOptions& options() { return options_; }
  const NamedTensors& parameters() const { return params_; }

  /// Drops every gradient (set to none, as torch ≥ 2.0 does by default).
  void zero_grad() {
    for (auto& [name, p] : params_) p.mutable_grad() = at::Tensor{};
  }

  void step() {
    c10::NoGradGuard no_grad;
    if (options_.capturable()) return capturable_step();
    // Parameters with a gradient, grouped by their step count (one group in practice).
    std::map<int64_t, std::vector<size_t>> groups;
    for (size_t i = 0; i < params_.size(); ++i)
      if (params_[i].second.grad().defined()) groups[++steps_[i]].push_back(i);
    const auto& o = options_;
    for (const auto& [k, idx] : groups) {
      auto [p, g, m, v] = lists(idx);
      decay_and_moments(p, g, m, v);
      const double bc1 = 1 - std::pow(o.beta1(), static_cast<double>(k));
      const double bc2 = 1 - std::pow(o.beta2(), static_cast<double>(k));
      auto denom = at::_foreach_sqrt(v);
      at::_foreach_div_(denom, std::sqrt(bc2));
      at::_foreach_add_(denom, o.eps());
      at::_foreach_addcdiv_(p, m, denom, -o.lr() / bc1);
    }
  }

  /// The state by name: "exp_avg.<param>", "exp_avg_sq.<param>" and "step.<param>" (int64 scalar).
  std::map<std::string, at::Tensor> state() const {
    std::map<std::string, at::Tensor> out;
    for (size_t i = 0; i < params_.size(); ++i) {
      const auto& n = params_[i].first;
      out.emplace("exp_avg." + n, exp_avg_[i]);
      out.emplace("exp_avg_sq." + n, exp_avg_sq_[i]);
      out.emplace("step." + n, options_.capturable() ? device_steps_[i].to(at::kCPU).to(at::kLong)
                                                      : at::scalar_tensor(steps_[i], at::kLong));
    }
    return out;
  }

  /// Restores a state() of an optimiser over the same parameters. Throws before changing
  /// anything if a name is missing, extra or mis-shaped.
  void load_state(const std::map<std::string, at::Tensor>& s, const std::string& source) {
    load_state_dict(StateDict{s, {}}, source);
  }

  /// The moments and step counts as tensors (state()), no settings.
  StateDict state_dict() const { return {state(), {}}; }
  void check_state_dict(const StateDict& sd, const std::string& source) const {
    const auto& s = sd.tensors;
    auto mine = state();
    std::vector<std::string> bad;
    for (const auto& [k, v] : mine) {
      auto it = s.find(k);
      if (it == s.end())
        bad.push_back("missing " + k);
      else if (it->second.sizes() != v.sizes())
        bad.push_back("mis-shaped " + k);
    }
    for (const auto& [k, v] : s)
      if (!mine.count(k)) bad.push_back("unexpected " + k);
    if (!bad.empty()) {
      std::string msg = source + ": optimiser state does not fit this model:";
      for (size_t i = 0; i < bad.size() && i < 8; ++i) msg += "\n  " + bad[i];
      if (bad.size() > 8) msg += fmt::format("\n  ... ({} in all)", bad.size());
      throw std::runtime_error(msg);
    }
  }
  void load_state_dict(const StateDict& sd, const std::string& source) {
    check_state_dict(sd, source);
    const auto& s = sd.tensors;
    c10::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      const auto& n = params_[i].first;
      exp_avg_[i].copy_(s.at("exp_avg." + n));
      exp_avg_sq_[i].copy_(s.at("exp_avg_sq." + n));
      steps_[i] = s.at("step." + n).item<int64_t>();
      if (options_.capturable()) device_steps_[i].fill_(static_cast<double>(steps_[i]));
    }
  }

 private:
  struct Lists {
    std::vector<at::Tensor> p, g, m, v;
  };
  /// Parameters, gradients and both moments of the parameters `idx`, as foreach lists.
  Lists lists(const std::vector<size_t>& idx) const {
    Lists l;
    for (size_t i : idx) {
      l.p.push_back(params_[i].second);
      l.g.push_back(params_[i].second.grad());
      l.m.push_back(exp_avg_[i]);
      l.v.push_back(exp_avg_sq_[i]);
    }
    return l;
  }

  /// The part of the update both paths share: decoupled weight decay p ← p(1 − lr·wd), then
  /// m ← β1·m + (1−β1)·g and v ← β2·v + (1−β2)·g².
  void decay_and_moments(std::vector<at::Tensor>& p, const std::vector<at::Tensor>& g,
                         std::vector<at::Tensor>& m, std::vector<at::Tensor>& v) const {
    const auto& o = options_;
    if (o.weight_decay() != 0) at::_foreach_mul_(p, 1 - o.lr() * o.weight_decay());
    at::_foreach_mul_(m, o.beta1());
    at::_foreach_add_(m, g, 1 - o.beta1());
    at::_foreach_mul_(v, o.beta2());
    at::_foreach_addcmul_(v, g, g, 1 - o.beta2());
  }

  /// The update of step() in tensors: k += 1 on the device; with s = lr/(1−β1^k) and
  /// c = √(1−β2^k) per parameter (0-d tensors), p ← p − s·m/(√v/c + eps), the host path's
  /// arithmetic with its scalars read from the device. Which parameters have a gradient is the only
  /// host decision (fixed across the replays of a captured step).
  void capturable_step() {
    std::vector<size_t> idx;
    for (size_t i = 0; i < params_.size(); ++i)
      if (params_[i].second.grad().defined()) idx.push_back(i);
    if (idx.empty()) return;
    const auto& o = options_;
    auto [p, g, m, v] = lists(idx);
    std::vector<at::Tensor> k;
    for (size_t i : idx) k.push_back(device_steps_[i]);
    at::_foreach_add_(k, 1.0);
    decay_and_moments(p, g, m, v);
    // Per-parameter scalars from one stacked vector (0-d views into it); the parameters share a device.
    const auto ks = at::stack(k);
    const auto c = at::rsub(at::pow(o.beta2(), ks), 1).sqrt_();
    const auto step_size = at::full({}, o.lr(), ks.options()).div(at::rsub(at::pow(o.beta1(), ks), 1));
    std::vector<at::Tensor> cs, ss;
    for (int64_t j = 0; j < ks.size(0); ++j) {
      cs.push_back(c.select(0, j));
      ss.push_back(step_size.select(0, j));
    }
    auto denom = at::_foreach_sqrt(v);
    at::_foreach_div_(denom, cs);
    at::_foreach_add_(denom, o.eps());
    auto update = at::_foreach_div(m, denom);
    at::_foreach_mul_(update, ss);
    at::_foreach_sub_(p, update);
  }

  NamedTensors params_;
  AdamWOptions options_;
  std::vector<at::Tensor> exp_avg_, exp_avg_sq_;
  std::vector<int64_t> steps_;         // host counts (the path without `capturable`)
  std::vector<at::Tensor> device_steps_;  // float64 0-d tensors on each parameter's device (`capturable`)
};

/// Scales the gradients of `params` so their global L2 norm is at most `max_norm`, as
/// The gradients' global L2 norm (a 0-d tensor on their device; no host sync).
inline std::vector<at::Tensor> grads_of(const NamedTensors& params) {
  std::vector<at::Tensor> grads;
  for (const auto& [n, p] : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  return grads;
}
inline at::Tensor grad_norm(const std::vector<at::Tensor>& grads) {
  c10::NoGradGuard no_grad;
  if (grads.empty()) return at::zeros({});
  return at::stack(at::_foreach_norm(grads)).norm();
}
inline at::Tensor grad_norm(const NamedTensors& params) { return grad_norm(grads_of(params)); }

/// torch.nn.utils.clip_grad_norm_ (coefficient max_norm / (norm + 1e-6), capped at 1); returns
/// the norm before clipping (a 0-d tensor on the gradients' device; no host sync).
inline at::Tensor clip_grad_norm(const NamedTensors& params, double max_norm) {
  c10::NoGradGuard no_grad;
  auto grads = grads_of(params);
  if (grads.empty()) return at::zeros({});
  auto total = grad_norm(grads);
  auto coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
  for (auto& g : grads) g.mul_(coef);
  return total;
}

struct LossScalerOptions {
  /// torch.cuda.amp.GradScaler's defaults.
  TORCH_ARG(double, init_scale) = 65536.0;
  TORCH_ARG(double, growth_factor) = 2.0;
  TORCH_ARG(double, backoff_factor) = 0.5;
  TORCH_ARG(int64_t, growth_interval) = 2000;
  /// A scale that falls below this means the gradients are not finite at any scale: training stops.
  TORCH_ARG(double, min_scale) = 1.0 / 65536;
};

/// Dynamic loss scaling for float16 training (torch.cuda.amp.GradScaler's rule): the loss is
/// multiplied by scale() before backward and the gradients divided by it after; a step whose
/// gradients overflow is skipped and the scale multiplied by backoff_factor, and after
/// growth_interval good steps in a row it is multiplied by growth_factor. Scales stay powers of two
/// when the factors and the initial scale are (the defaults), so scaling and unscaling are exact:
/// a step that does not overflow equals the unscaled step bit for bit (gradients that would be
/// subnormal apart). The scale lives on the host: the trainer already reads one finiteness flag per
/// step, so this costs no further sync.
class LossScaler {
 public:
  explicit LossScaler(LossScalerOptions o = {}) : options_(o), scale_(o.init_scale()) {
    auto fail = [](const std::string& m) { throw std::invalid_argument("loss scaler: " + m); };
    if (!(o.init_scale() > 0 && std::isfinite(o.init_scale()))) fail(fmt::format("init_scale must be > 0, got {}", o.init_scale()));
    if (!(o.growth_factor() >= 1)) fail(fmt::format("growth_factor must be >= 1, got {}", o.growth_factor()));
    if (!(o.backoff_factor() > 0 && o.backoff_factor() < 1))
      fail(fmt::format("backoff_factor must be in (0, 1), got {}", o.backoff_factor()));
    if (o.growth_interval() < 1) fail(fmt::format("growth_interval must be >= 1, got {}", o.growth_interval()));
    if (!(o.min_scale() > 0)) fail(fmt::format("min_scale must be > 0, got {}", o.min_scale()));
  }
  const LossScalerOptions& options() const { return options_; }
  double scale() const { return scale_; }
  /// Good steps since the last change of scale.
  int64_t growth_tracker() const { return tracker_; }

  /// Records a step: `finite` false backs off (the caller skips the step), true counts towards
  /// growth. Throws once the scale would fall below min_scale.
  void update(bool finite) {
    if (!finite) {
      tracker_ = 0;
      const double next = scale_ * options_.backoff_factor();
      if (next < options_.min_scale())
        throw std::runtime_error(fmt::format("float16 loss scaling: the gradients overflow even at loss scale {} "
                                             "(the run diverged, or it needs bf16 or fp32)",
                                             scale_));
      scale_ = next;
      return;
    }
    if (++tracker_ >= options_.growth_interval()) {
      scale_ *= options_.growth_factor();
      tracker_ = 0;
    }
  }
  /// Restores a scale and tracker saved with a checkpoint.
  void restore(double scale, int64_t tracker) {
    if (!(scale > 0 && std::isfinite(scale)) || tracker < 0 || tracker >= options_.growth_interval())
      throw std::invalid_argument(fmt::format("loss scaler: cannot restore scale {} with {} good steps", scale, tracker));
    scale_ = scale;
    tracker_ = tracker;
  }

  /// The scale and the good steps since it changed, as the settings "loss_scale" and
  /// "loss_scale_good_steps" (a checkpoint's trainer section). A state without them (a run that
  /// had no scaler) loads as the initial scale.
  StateDict state_dict() const { return {{}, {{"loss_scale", scale_}, {"loss_scale_good_steps", tracker_}}}; }
  void check_state_dict(const StateDict& sd, const std::string& source) const { (void)read(sd, source); }
  void load_state_dict(const StateDict& sd, const std::string& source) {
    const auto [scale, good] = read(sd, source);
    restore(scale, good);
  }

 private:
  std::pair<double, int64_t> read(const StateDict& sd, const std::string& source) const {
    const auto sv = sd.text("loss_scale"), gv = sd.text("loss_scale_good_steps");
    if (sv.empty()) return {options_.init_scale(), 0};
    const std::string g = gv.empty() ? "0" : gv;
    char* end = nullptr;
    const double scale = std::strtod(sv.c_str(), &end);
    int64_t good = 0;
    if (end != sv.c_str() + sv.size() || !(scale > 0 && std::isfinite(scale)) ||
        std::from_chars(g.data(), g.data() + g.size(), good).ptr != g.data() + g.size() || good < 0 ||
        good >= options_.growth_interval())
      throw std::runtime_error(fmt::format("{} has a damaged loss scale: casdm.trainer.loss_scale '{}', "
                                           "casdm.trainer.loss_scale_good_steps '{}'", source, sv, gv));
    return {scale, good};
  }

  LossScalerOptions options_;
  double scale_;
  int64_t tracker_ = 0;
};

/// An exponential moving average of a module's trainable parameters (buffers are copied; frozen
/// parameters are left as they are in the copy):
/// ema ← rate·ema + (1 − rate)·p after every update().
class Ema {
 public:
  Ema(torch::nn::Module& live, torch::nn::Module& shadow, double rate) : rate_(rate) {
    if (!(rate >= 0 && rate < 1)) throw std::invalid_argument(fmt::format("EMA rate must be in [0, 1), got {}", rate));
    auto lp = live.named_parameters(true), sp = shadow.named_parameters(true);
    if (lp.size() != sp.size()) throw std::invalid_argument("EMA: the shadow module has other parameters");
    for (size_t i = 0; i < lp.size(); ++i) {
      if (!lp[i].value().requires_grad()) continue;  // frozen (a metric backbone): never changes
      live_.push_back(lp[i].value());
      shadow_.push_back(sp[i].value());
    }
    for (auto& kv : live.named_buffers(true)) live_buffers_.push_back(kv.value());
    for (auto& kv : shadow.named_buffers(true)) shadow_buffers_.push_back(kv.value());
  }
  double rate() const { return rate_; }
  void update() {
    c10::NoGradGuard no_grad;
    at::_foreach_mul_(shadow_, rate_);
    at::_foreach_add_(shadow_, live_, 1 - rate_);
    for (size_t i = 0; i < live_buffers_.size(); ++i) shadow_buffers_[i].copy_(live_buffers_[i]);
  }

 private:
  double rate_;
  std::vector<at::Tensor> live_, shadow_, live_buffers_, shadow_buffers_;
};

}  // namespace casdm::train
