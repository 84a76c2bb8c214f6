#pragma once
// The x̂0 of a sampling run every K steps, for a picture of how the estimate forms
// (casdm-sample --trajectory K):
//
//   casdm::sampler::Trajectory tr(/*every=*/10, /*images=*/8);
//   auto x = casdm::sample<casdm::sampler::DDIM<50>>(d, 16, casdm::SampleOptions().on_step(tr.recorder()));
//   casdm::report::write_grid("trajectory.png", tr.images(), tr.columns(), "x0 estimate every 10 steps");
//
// Row r of the grid is image r, column k its x̂0 after step (k + 1)·K (the last column: the last step).
// Only the first run it records is kept (draw_samples runs one per batch: the first batch's).
#include "casdm/sampler/options.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <vector>

namespace casdm::sampler {

class Trajectory {
 public:
  /// Keeps the first `images` images' x̂0 every `every` steps and at the last step.
  Trajectory(int64_t every, int64_t images = 8) : every_(every), images_(images) {
    if (every < 1) throw std::invalid_argument(fmt::format("Trajectory: every must be >= 1 step, got {}", every));
    if (images < 1) throw std::invalid_argument(fmt::format("Trajectory: images must be >= 1, got {}", images));
  }

  /// The callback for SampleOptions::on_step.
  std::function<void(const SampleStep&)> recorder() {
    return [this](const SampleStep& s) {
      if (done_ || !s.x0.defined()) return;
      if (s.step % every_ == 0 || s.step == s.steps)
        frames_.push_back(s.x0.slice(0, 0, std::min(images_, s.x0.size(0))).clamp(-1, 1).to(at::kCPU, at::kFloat));
      if (s.step == s.steps) done_ = true;
    };
  }

  /// Snapshots taken (the grid's columns).
  int64_t columns() const { return static_cast<int64_t>(frames_.size()); }
  /// The grid's images, row by row: [images × columns, C, H, W] in [−1, 1]. Nothing recorded: refused.
  at::Tensor images() const {
    if (frames_.empty()) throw std::runtime_error("Trajectory: no sampling step was recorded");
    return at::stack(frames_, 1).flatten(0, 1);  // [images, columns, C, H, W] → rows of one image each
  }

 private:
  int64_t every_, images_;
  bool done_ = false;
  std::vector<at::Tensor> frames_;
};

}  // namespace casdm::sampler
