#pragma once
// Training any casdm model: AdamW, EMA copies of the weights, optional gradient clipping and
// micro-batching, and checkpoints that continue a run exactly.
//
//   casdm::train::Trainer<casdm::presets::CasDM> trainer(model, casdm::train::TrainerOptions()
//       .optimizer(casdm::train::AdamWOptions().lr(1e-4)).ema_rates({0.9999}).grad_clip(1.0));
//   auto report = trainer.step(x0);                       // one optimiser step
//   trainer.save("run/ckpt.pt", {{"preset", "CasDM"}});   // model, EMA, optimiser, step, RNG
//   trainer.load("run/ckpt.pt");                          // strict: refuses another model or size
//
// A checkpoint is a torch.save-format dict (Python's torch.load reads it): tensors "model.*",
// "ema.<i>.*", "optim.*", "rng.cpu" (and "rng.cuda"), and metadata strings "casdm.format",
// "casdm.model" (the C++ type), "casdm.step", "casdm.options.*" (ModelOptions),
// "casdm.ema.<i>.rate", "casdm.trainer.*" and whatever the caller adds.
//
// Exactness: with the same data per step, 2N steps straight and N steps + save + load + N steps
// give bit-identical parameters (tests/test_trainer.cpp), because the checkpoint holds everything
// the step consumes: weights, EMA, optimiser moments and counts, and the default generators'
// states (t, ε and dropout are drawn from them).
#include "casdm/core/options_io.hpp"
#include "casdm/loss/set.hpp"
#include "casdm/train/checkpoint.hpp"
#include "casdm/train/optim.hpp"

#include <ATen/Context.h>
#include <ATen/core/Generator.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::train {

inline constexpr const char* checkpoint_format = "casdm-checkpoint-1";

struct TrainerOptions {
  TORCH_ARG(AdamWOptions, optimizer) = AdamWOptions{};
  /// One EMA copy of the weights per rate (improved-diffusion: 0.9999).
  TORCH_ARG(std::vector<double>, ema_rates) = std::vector<double>{0.9999};
  /// Largest global L2 norm of the gradients; 0 turns clipping off.
  TORCH_ARG(double, grad_clip) = 0.0;
  /// Split each batch into chunks of this many images whose gradients are accumulated (same
  /// update, less memory); 0 means the whole batch at once.
  TORCH_ARG(int64_t, micro_batch) = 0;
};

/// What a checkpoint says about itself, read without building a model.
struct CheckpointInfo {
  std::filesystem::path path;
  TensorFile file;
  int64_t step = 0;
  std::string model_type;
  ModelOptions options;
  std::map<std::string, std::string> meta;  // every metadata string, "casdm." stripped

  std::string get(const std::string& key, const std::string& fallback = "") const {
    auto it = meta.find(key);
    return it == meta.end() ? fallback : it->second;
  }
};

/// Reads a checkpoint's file and metadata; a file that is not a casdm checkpoint is refused.
inline CheckpointInfo read_checkpoint(const std::filesystem::path& path) {
  CheckpointInfo c;
  c.path = path;
  c.file = read_tensor_file(path);
  c.meta = c.file.meta;
  const auto fmt = c.get("format");
  if (fmt.empty())
    throw std::runtime_error(path.string() + " is not a casdm checkpoint (no casdm.format entry; a model file or "
                                             "another program's torch.save?)");
  if (fmt != checkpoint_format)
    throw std::runtime_error(path.string() + " has checkpoint format '" + fmt + "'; this build reads '" +
                             checkpoint_format + "'");
  c.model_type = c.get("model");
  try {
    c.step = std::stoll(c.get("step"));
    std::map<std::string, std::string> opts;
    for (const auto& [k, v] : c.meta)
      if (k.rfind("options.", 0) == 0) opts.emplace(k.substr(8), v);
    c.options = options_from_map(opts);
  } catch (const std::exception& e) {
    throw std::runtime_error(path.string() + " has damaged metadata: " + e.what());
  }
  return c;
}

/// The tensors of `f` under `prefix`, with the prefix removed.
inline std::map<std::string, at::Tensor> section(const TensorFile& f, const std::string& prefix) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [k, v] : f.tensors)
    if (k.rfind(prefix, 0) == 0) out.emplace(k.substr(prefix.size()), v);
  return out;
}

namespace detail {
inline std::optional<at::Generator> cuda_generator(const c10::Device& d) {
  if (!d.is_cuda()) return std::nullopt;
  return at::globalContext().defaultGenerator(d);
}
}  // namespace detail

/// Saves the default CPU generator's state (and the CUDA one of `device`) and restores it on scope
/// exit: work inside (e.g. sample grids during training) leaves the training run's draws as they were.
class GeneratorStateGuard {
 public:
  explicit GeneratorStateGuard(const c10::Device& device = c10::Device(c10::kCPU))
      : cpu_(at::detail::getDefaultCPUGenerator()), cuda_(detail::cuda_generator(device)) {
    std::lock_guard<std::mutex> l(cpu_.mutex());
    cpu_state_ = cpu_.get_state();
    if (cuda_) {
      std::lock_guard<std::mutex> lc(cuda_->mutex());
      cuda_state_ = cuda_->get_state();
    }
  }
  GeneratorStateGuard(const GeneratorStateGuard&) = delete;
  GeneratorStateGuard& operator=(const GeneratorStateGuard&) = delete;
  ~GeneratorStateGuard() {
    std::lock_guard<std::mutex> l(cpu_.mutex());
    cpu_.set_state(cpu_state_);
    if (cuda_) {
      std::lock_guard<std::mutex> lc(cuda_->mutex());
      cuda_->set_state(cuda_state_);
    }
  }

 private:
  at::Generator cpu_;
  std::optional<at::Generator> cuda_;
  at::Tensor cpu_state_, cuda_state_;
};

template <class M>
class Trainer {
 public:
  using Impl = typename M::Impl;

  Trainer(M model, TrainerOptions o = {})
      : model_(std::move(model)), options_(std::move(o)),
        optimizer_(trainable_parameters(*model_), options_.optimizer()) {
    if (options_.micro_batch() < 0) throw std::invalid_argument("micro_batch must be >= 0");
    if (options_.grad_clip() < 0) throw std::invalid_argument("grad_clip must be >= 0 (0: off)");
    for (double r : options_.ema_rates()) {
      auto copy = std::dynamic_pointer_cast<Impl>(model_->clone());
      copy->eval();
      for (auto& p : copy->parameters()) p.requires_grad_(false);
      emas_.emplace_back(copy);
      ema_updates_.emplace_back(*model_, *copy, r);
    }
  }

  M& model() { return model_; }
  /// The EMA copy with rate options().ema_rates()[i] (eval mode; sample from it).
  M& ema(size_t i = 0) { return emas_.at(i); }
  AdamW& optimizer() { return optimizer_; }
  const TrainerOptions& options() const { return options_; }
  /// Optimiser steps taken (restored by load()).
  int64_t step_count() const { return step_; }
  /// The gradients' global norm before clipping at the last step (undefined when clipping is off).
  const at::Tensor& last_grad_norm() const { return grad_norm_; }

  /// One optimiser step on a batch x0 ∈ [−1, 1]; returns the batch's loss terms (detached; with
  /// micro-batches, their size-weighted mean).
  loss::LossReport step(const at::Tensor& x0) {
    model_->train();
    optimizer_.zero_grad();
    const int64_t n = x0.size(0);
    const int64_t chunk = options_.micro_batch() > 0 ? std::min(options_.micro_batch(), n) : n;
    loss::LossReport out;
    for (int64_t s = 0; s < n; s += chunk) {
      const int64_t e = std::min(n, s + chunk);
      auto r = model_->training_losses(x0.slice(0, s, e));
      const double w = static_cast<double>(e - s) / static_cast<double>(n);
      (chunk == n ? r.total : r.total * w).backward();
      if (!out.total.defined()) {
        out.total = r.total.detach() * w;
        for (auto& [name, v] : r.terms) out.terms.emplace_back(name, v.detach() * w);
      } else {
        out.total = out.total + r.total.detach() * w;
        for (size_t i = 0; i < r.terms.size(); ++i) out.terms[i].second = out.terms[i].second + r.terms[i].second.detach() * w;
      }
    }
    grad_norm_ = options_.grad_clip() > 0 ? clip_grad_norm(optimizer_.parameters(), options_.grad_clip()) : at::Tensor{};
    optimizer_.step();
    for (auto& e : ema_updates_) e.update();
    ++step_;
    return out;
  }

  /// Writes a checkpoint atomically; `extra` goes into the metadata ("casdm.<key>"). `before_rename`
  /// is for tests of an interrupted write.
  void save(const std::filesystem::path& path, const std::map<std::string, std::string>& extra = {},
            const std::function<void()>& before_rename = {}) const {
    TensorFile f;
    f.meta = extra;
    f.meta["format"] = checkpoint_format;
    f.meta["model"] = model_->name();
    f.meta["step"] = std::to_string(step_);
    for (const auto& [k, v] : options_to_map(model_->options)) f.meta["options." + k] = v;
    const auto& o = options_.optimizer();
    f.meta["trainer.lr"] = casdm::detail::format_double(o.lr());
    f.meta["trainer.weight_decay"] = casdm::detail::format_double(o.weight_decay());
    f.meta["trainer.grad_clip"] = casdm::detail::format_double(options_.grad_clip());
    f.meta["trainer.micro_batch"] = std::to_string(options_.micro_batch());
    for (const auto& [k, v] : state_of(*model_)) f.tensors.emplace("model." + k, v);
    if (auto sum = external_checksum(*model_); !sum.empty()) f.meta["external.checksum"] = sum;
    for (size_t i = 0; i < emas_.size(); ++i) {
      const auto p = "ema." + std::to_string(i) + ".";
      f.meta[p + "rate"] = casdm::detail::format_double(options_.ema_rates()[i]);
      for (const auto& [k, v] : state_of(*emas_[i])) f.tensors.emplace(p + k, v);
    }
    for (const auto& [k, v] : optimizer_.state()) f.tensors.emplace("optim." + k, v);
    {
      at::Generator cpu = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(cpu.mutex());
      f.tensors.emplace("rng.cpu", cpu.get_state());
    }
    if (auto g = detail::cuda_generator(device())) {
      std::lock_guard<std::mutex> lock(g->mutex());
      f.tensors.emplace("rng.cuda", g->get_state());
    }
    write_tensor_file(path, f, before_rename);
  }

  /// Restores a checkpoint written by save() for the same model type, options and EMA rates.
  /// Everything is checked before anything changes: a refused file leaves the trainer as it was.
  void load(const std::filesystem::path& path) { load(read_checkpoint(path)); }

  void load(const CheckpointInfo& c) {
    const auto src = c.path.string();
    if (c.model_type != model_->name())
      throw std::runtime_error(src + " holds another model" +
                               (c.get("preset").empty() ? "" : " (preset " + c.get("preset") + ")") + ": " +
                               c.model_type + ", not " + model_->name());
    if (auto diff = options_differences(c.options, model_->options); !diff.empty()) {
      std::string msg = src + " was trained with other model options (checkpoint vs this run):";
      for (const auto& d : diff) msg += "\n  " + d;
      throw std::runtime_error(msg);
    }
    std::vector<double> rates;
    for (size_t i = 0; c.meta.count("ema." + std::to_string(i) + ".rate"); ++i)
      rates.push_back(std::stod(c.get("ema." + std::to_string(i) + ".rate")));
    if (rates != options_.ema_rates()) {
      std::string have, want;
      for (double r : rates) have += (have.empty() ? "" : ",") + casdm::detail::format_double(r);
      for (double r : options_.ema_rates()) want += (want.empty() ? "" : ",") + casdm::detail::format_double(r);
      throw std::runtime_error(src + " has EMA rates {" + have + "}, this run asks for {" + want + "}");
    }
    if (auto want = c.get("external.checksum"), have = external_checksum(*model_); !want.empty() && want != have)
      throw std::runtime_error(src + ": the feature network's weights differ from those the run was trained with "
                               "(checksum " + want + " in the checkpoint, " +
                               (have.empty() ? "none" : have) + " now; were the files in " +
                               model_->options.feature_weights() + " replaced?)");
    if (auto why = state_mismatch(*model_, section(c.file, "model."), src + " (model)"); !why.empty())
      throw std::runtime_error(why);
    for (size_t i = 0; i < emas_.size(); ++i) {
      const auto p = "ema." + std::to_string(i) + ".";
      if (auto why = state_mismatch(*emas_[i], section(c.file, p), src + " (EMA " + std::to_string(i) + ")");
          !why.empty())
        throw std::runtime_error(why);
    }
    if (!c.file.tensors.count("rng.cpu")) throw std::runtime_error(src + " lacks the generator state rng.cpu");
    optimizer_.load_state(section(c.file, "optim."), src);  // checks, then copies
    load_state_strict(*model_, section(c.file, "model."), src);
    for (size_t i = 0; i < emas_.size(); ++i)
      load_state_strict(*emas_[i], section(c.file, "ema." + std::to_string(i) + "."), src);
    {
      at::Generator cpu = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(cpu.mutex());
      cpu.set_state(c.file.tensors.at("rng.cpu"));
    }
    if (auto g = detail::cuda_generator(device()); g && c.file.tensors.count("rng.cuda")) {
      std::lock_guard<std::mutex> lock(g->mutex());
      g->set_state(c.file.tensors.at("rng.cuda"));
    }
    step_ = c.step;
  }

 private:
  c10::Device device() const { return model_->parameters().front().device(); }

  M model_;
  TrainerOptions options_;
  AdamW optimizer_;
  std::vector<M> emas_;
  std::vector<Ema> ema_updates_;
  int64_t step_ = 0;
  at::Tensor grad_norm_;
};

/// A run's checkpoint folder: files ckpt-<step>.pt, of which the newest `keep` are kept.
class CheckpointDir {
 public:
  explicit CheckpointDir(std::filesystem::path dir, int64_t keep = 3) : dir_(std::move(dir)), keep_(keep) {
    if (keep_ < 1) throw std::invalid_argument("checkpoints to keep must be >= 1");
  }
  const std::filesystem::path& path() const { return dir_; }

  std::filesystem::path file_for(int64_t step) const {
    char name[32];
    std::snprintf(name, sizeof name, "ckpt-%09lld.pt", static_cast<long long>(step));
    return dir_ / name;
  }

  /// The checkpoint files, oldest first.
  std::vector<std::filesystem::path> list() const {
    std::vector<std::pair<int64_t, std::filesystem::path>> found;
    static const std::regex re(R"(ckpt-(\d+)\.pt)");
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
      std::smatch m;
      const auto name = e.path().filename().string();
      if (std::regex_match(name, m, re)) found.emplace_back(std::stoll(m[1]), e.path());
    }
    std::sort(found.begin(), found.end());
    std::vector<std::filesystem::path> out;
    for (auto& [s, p] : found) out.push_back(p);
    return out;
  }

  std::optional<std::filesystem::path> latest() const {
    auto l = list();
    if (l.empty()) return std::nullopt;
    return l.back();
  }

  /// Saves `t` as ckpt-<step>.pt, then removes all but the newest `keep` checkpoints.
  template <class M>
  std::filesystem::path save(const Trainer<M>& t, const std::map<std::string, std::string>& extra = {}) const {
    std::filesystem::create_directories(dir_);
    auto file = file_for(t.step_count());
    t.save(file, extra);
    auto l = list();
    for (size_t i = 0; i + static_cast<size_t>(keep_) < l.size(); ++i) std::filesystem::remove(l[i]);
    return file;
  }

 private:
  std::filesystem::path dir_;
  int64_t keep_;
};

}  // namespace casdm::train
