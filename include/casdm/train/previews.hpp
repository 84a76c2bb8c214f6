#pragma once
// Sample grids that follow a training run: the same starting noise (and, for a class-conditional
// model, the same labels) at every grid, so that two grids differ only by the weights, drawn
// without touching the run's random state — a run with previews trains exactly as one without.
//
//   casdm::train::Previews previews(trainer, casdm::train::PreviewOptions().count(64).steps(50).seed(1));
//   casdm::report::write_grid("samples-1000.png", previews.sample(), 8, "CasDM, step 1000");
#include "casdm/sampler/registry.hpp"
#include "casdm/train/trainer.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/arg.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>

namespace casdm::train {

/// Class i % K at position i of n: a grid K columns wide shows one class per column.
inline at::Tensor cycling_labels(int64_t n, int64_t classes) {
  if (n < 0 || classes < 1)
    throw std::invalid_argument(fmt::format("cycling_labels: {} labels over {} classes", n, classes));
  return at::arange(n, at::kLong).remainder(classes);
}

struct PreviewOptions {
  TORCH_ARG(int64_t, count) = 64;  // images in a grid
  TORCH_ARG(int64_t, steps) = 50;  // sampler steps (0: the sampler's default)
  TORCH_ARG(uint64_t, seed) = 1;   // of the fixed noise (its own generator)
  TORCH_ARG(size_t, ema) = 0;      // which EMA copy samples
};

/// Grids from the EMA weights of `trainer`'s model, from noise drawn once at construction.
template <class Model>
class Previews {
 public:
  Previews(Trainer<Model>& trainer, PreviewOptions o) : trainer_(trainer), options_(o) {
    const auto& mo = trainer.model()->denoiser()->options;
    if (o.count() < 1) throw std::invalid_argument(fmt::format("PreviewOptions: count must be >= 1, got {}", o.count()));
    // Refused now rather than at the first grid, hours into a run.
    sampler::check_steps(Model::Impl::sampler_type::name, mo.diffusion_steps(), o.steps(), "PreviewOptions: steps");
    if (o.ema() >= trainer.options().ema_rates().size())
      throw std::invalid_argument(fmt::format("PreviewOptions: EMA copy {} asked, the trainer keeps {}", o.ema(),
                                              trainer.options().ema_rates().size()));
    noise_ = at::randn({o.count(), mo.channels(), mo.image_size(), mo.image_size()},
                       at::make_generator<at::CPUGeneratorImpl>(o.seed()));
    if (mo.num_classes() > 0) labels_ = cycling_labels(o.count(), mo.num_classes());
  }

  /// count() images in [−1, 1] on the model's device; the default generators (CPU, and the
  /// model's CUDA device) are as they were before the call.
  at::Tensor sample() {
    GeneratorStateGuard keep_rng(trainer_.model()->parameters().front().device());
    const auto t0 = std::chrono::steady_clock::now();
    auto so = SampleOptions().steps(options_.steps()).noise(noise_);
    if (labels_.defined()) so.labels(labels_);
    auto x = trainer_.sample_ema(options_.count(), so, options_.ema());
    seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    total_seconds_ += seconds_;
    return x;
  }

  const at::Tensor& noise() const { return noise_; }
  const at::Tensor& labels() const { return labels_; }  // undefined for an unconditional model
  double last_seconds() const { return seconds_; }      // the latest sample()'s wall time
  double total_seconds() const { return total_seconds_; }

 private:
  Trainer<Model>& trainer_;
  PreviewOptions options_;
  at::Tensor noise_, labels_;
  double seconds_ = 0, total_seconds_ = 0;
};

}  // namespace casdm::train
