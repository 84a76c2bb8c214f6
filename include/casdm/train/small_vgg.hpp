#pragma once
// Training the SmallVGG classifier (metric/small_vgg.hpp) on labelled images: the metric network of
// CPU-scale runs and the domain scorer of evaluation (casdm-metric runs this).
//
//   auto r = casdm::train::train_small_vgg(train_images, train_labels, casdm::train::SmallVGGTraining());
//   casdm::metric::save_small_vgg(r.net, "weights/small_vgg.pt", {{"accuracy", "0.91"}});
#include "casdm/metric/small_vgg.hpp"
#include "casdm/train/optim.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <cmath>
#include <functional>

namespace casdm::train {

struct SmallVGGTraining {
  TORCH_ARG(metric::SmallVGGOptions, net) = {};
  /// Side the images are resized to (𝒯's; the feature loss's feature_size should match).
  TORCH_ARG(int64_t, image_size) = 32;
  TORCH_ARG(int64_t, steps) = 2000;
  TORCH_ARG(int64_t, batch_size) = 128;
  TORCH_ARG(double, lr) = 2e-3;
  TORCH_ARG(double, weight_decay) = 1e-4;
  /// Random horizontal flips of training images.
  TORCH_ARG(bool, hflip) = true;
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(c10::Device, device) = c10::Device(c10::kCPU);
};

struct SmallVGGResult {
  metric::SmallVGG net{nullptr};
  double final_loss = 0;  // mean cross-entropy over the last 50 steps
};

/// Trains a SmallVGG classifier with AdamW on (images, labels); `progress(step, loss)` is called
/// every 50 steps. Labels must lie in [0, num_classes).
inline SmallVGGResult train_small_vgg(const at::Tensor& images, const at::Tensor& labels, const SmallVGGTraining& o,
                                      const std::function<void(int64_t, double)>& progress = {}) {
  metric::detail::check_labelled(images, labels, "SmallVGG training");
  const int64_t classes = o.net().num_classes();
  if (labels.min().item<int64_t>() < 0 || labels.max().item<int64_t>() >= classes)
    throw std::invalid_argument(fmt::format("SmallVGG training: labels must lie in [0, {}), found {} … {}", classes,
                                            labels.min().item<int64_t>(), labels.max().item<int64_t>()));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed());
  metric::SmallVGG net(o.net());
  {
    // Parameters drawn from the run's own generator: the same seed gives the same network.
    at::NoGradGuard g;
    for (auto& p : net->parameters()) {
      const double bound = p.dim() > 1 ? std::sqrt(6.0 / static_cast<double>(p[0].numel())) : 0.0;
      p.copy_(bound > 0 ? at::rand(p.sizes(), gen) * (2 * bound) - bound : at::zeros(p.sizes()));
    }
  }
  net->to(o.device());
  net->train();
  AdamW opt(trainable_parameters(*net), AdamWOptions().lr(o.lr()).weight_decay(o.weight_decay()));
  const auto all_labels = labels.to(at::kLong);
  double recent = 0;
  int64_t recent_n = 0;
  for (int64_t step = 0; step < o.steps(); ++step) {
    auto idx = at::randint(images.size(0), {o.batch_size()}, gen, at::TensorOptions().dtype(at::kLong));
    auto x = metric::detail::classifier_input(images.index_select(0, idx), o.image_size(), o.device());
    if (o.hflip()) {
      auto flip = (at::rand({x.size(0)}, gen) < 0.5).to(o.device()).view({-1, 1, 1, 1});
      x = at::where(flip, x.flip({3}), x);
    }
    auto y = all_labels.index_select(0, idx).to(o.device());
    opt.zero_grad();
    auto loss = at::cross_entropy_loss(net->logits(x), y);
    loss.backward();
    opt.step();
    if (step >= o.steps() - 50) {
      recent += loss.item<double>();
      ++recent_n;
    }
    if (progress && ((step + 1) % 50 == 0 || step + 1 == o.steps())) progress(step + 1, loss.item<double>());
  }
  net->eval();
  for (auto& p : net->parameters()) p.requires_grad_(false);
  return {net, recent_n ? recent / static_cast<double>(recent_n) : 0.0};
}

}  // namespace casdm::train
