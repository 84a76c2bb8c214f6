#pragma once
// A small VGG-style classifier trained on the training data itself: the metric network for
// CPU-scale runs without ImageNet weights (and a domain classifier for evaluation). Stages of two
// 3×3 convolutions + ReLU, a 2×2 max pool between stages, global average pooling and a linear
// classifier; parameter names follow torchvision's VGG ("features.<i>", "classifier").
//
// Input: [N, 3, H, W] in [0, 1] — what the feature transform 𝒯 makes of [−1, 1] images (bilinear
// resize, grayscale repeated to three channels), so the network is trained on exactly what the
// feature loss feeds it. Its distance is LPIPS's formula with every linear weight 1 (Zhang et al.
// 2018's "baseline" variant): per stage, features unit-normalised over channels, squared
// differences summed over channels and averaged over space; summed over stages.
//
//   auto r = casdm::train::train_small_vgg(train_images, train_labels, casdm::train::SmallVGGTraining());
//   casdm::metric::save_small_vgg(r.net, "weights/small_vgg.pt", {{"accuracy", "0.91"}});
//   auto net = casdm::metric::load_small_vgg("weights/small_vgg.pt");     // architecture from the file
#include <fmt/format.h>
#include <fmt/ranges.h>
#include "casdm/metric/transform.hpp"
#include "casdm/io/tensor_file.hpp"

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/nn/pimpl.h>

#include <ATen/ATen.h>

#include <filesystem>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace casdm::metric {

struct SmallVGGOptions {
  /// Output channels of each stage (two 3×3 convolutions each).
  TORCH_ARG(std::vector<int64_t>, widths) = std::vector<int64_t>{32, 64, 128};
  TORCH_ARG(int64_t, num_classes) = 10;
};

class SmallVGGImpl : public torch::nn::Cloneable<SmallVGGImpl> {
 public:
  explicit SmallVGGImpl(SmallVGGOptions o = {}) : options(std::move(o)) { reset(); }

  void reset() override {
    if (options.widths().empty()) throw std::invalid_argument("SmallVGG: widths must name at least one stage");
    if (options.num_classes() < 2) throw std::invalid_argument("SmallVGG: needs at least two classes");
    features = torch::nn::Sequential();
    taps_.clear();
    int64_t in = 3;
    for (size_t s = 0; s < options.widths().size(); ++s) {
      if (s > 0) features->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
      for (int k = 0; k < 2; ++k) {
        features->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, options.widths()[s], 3).padding(1)));
        features->push_back(torch::nn::ReLU());
        in = options.widths()[s];
      }
      taps_.push_back(static_cast<int64_t>(features->size()) - 1);
    }
    register_module("features", features);
    classifier = register_module("classifier", torch::nn::Linear(in, options.num_classes()));
  }

  /// The output of every stage (after its second ReLU) for [N, 3, H, W] in [0, 1].
  std::vector<at::Tensor> stages(const at::Tensor& x) {
    if (x.dim() != 4 || x.size(1) != 3) throw std::invalid_argument("SmallVGG: expected images [N, 3, H, W] in [0, 1]");
    std::vector<at::Tensor> out;
    auto h = (x - 0.5) / 0.5;
    size_t next = 0;
    for (size_t i = 0; i < features->size() && next < taps_.size(); ++i) {
      const auto m = features->ptr(i);
      if (auto conv = std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(m))
        h = conv->forward(h);
      else if (std::dynamic_pointer_cast<torch::nn::MaxPool2dImpl>(m))
        h = at::max_pool2d(h, {2, 2}, {2, 2});
      else
        h = at::relu(h);
      if (static_cast<int64_t>(i) == taps_[next]) {
        out.push_back(h);
        ++next;
      }
    }
    return out;
  }

  at::Tensor logits(const at::Tensor& x) { return classifier(stages(x).back().mean({2, 3})); }

  SmallVGGOptions options;
  torch::nn::Sequential features{nullptr};
  torch::nn::Linear classifier{nullptr};

 private:
  std::vector<int64_t> taps_;
};
TORCH_MODULE(SmallVGG);

/// LPIPS's formula with unit weights on the stages of `net`; a, b: [N, 3, H, W] in [0, 1] → [N].
inline at::Tensor small_vgg_distance(SmallVGG& net, const at::Tensor& a, const at::Tensor& b) {
  auto fa = net->stages(a), fb = net->stages(b);
  at::Tensor d = at::zeros({a.size(0)}, a.options());
  for (size_t l = 0; l < fa.size(); ++l) {
    auto na = fa[l] / (fa[l].pow(2).sum(1, true).sqrt() + 1e-10);
    auto nb = fb[l] / (fb[l].pow(2).sum(1, true).sqrt() + 1e-10);
    d = d + (na - nb).pow(2).sum(1).mean({1, 2});
  }
  return d;
}


namespace detail {
/// uint8 [N, C, H, W] → 𝒯: [N, 3, S, S] in [0, 1] on `device`.
inline at::Tensor classifier_input(const at::Tensor& images, int64_t size, const c10::Device& device) {
  auto x = images.to(device).to(at::kFloat) / 127.5 - 1;
  return metric::feature_transform(x, size);
}
inline void check_labelled(const at::Tensor& images, const at::Tensor& labels, const std::string& what) {
  if (!images.defined() || images.dim() != 4 || images.scalar_type() != at::kByte)
    throw std::invalid_argument(what + ": expected uint8 images [N, C, H, W]");
  if (images.size(1) != 1 && images.size(1) != 3)
    throw std::invalid_argument(fmt::format("{}: images must have 1 or 3 channels, not {}", what, images.size(1)));
  if (!labels.defined() || labels.numel() == 0)
    throw std::invalid_argument(what + ": the data set has no labels (image folders have none; use IDX or CIFAR-10 data)");
  if (labels.dim() != 1 || labels.size(0) != images.size(0))
    throw std::invalid_argument(fmt::format("{}: {} labels for {} images", what, labels.numel(), images.size(0)));
}
}  // namespace detail


/// The share of (images, labels) that `net` classifies correctly at side `image_size`.
inline double small_vgg_accuracy(SmallVGG& net, const at::Tensor& images, const at::Tensor& labels, int64_t image_size,
                                 int64_t batch = 500) {
  detail::check_labelled(images, labels, "SmallVGG accuracy");
  at::NoGradGuard g;
  net->eval();
  const auto device = net->parameters().front().device();
  int64_t right = 0;
  for (int64_t s = 0; s < images.size(0); s += batch) {
    const int64_t e = std::min(images.size(0), s + batch);
    auto pred = net->logits(detail::classifier_input(images.slice(0, s, e), image_size, device)).argmax(1).cpu();
    right += pred.eq(labels.slice(0, s, e).to(at::kLong)).sum().item<int64_t>();
  }
  return static_cast<double>(right) / static_cast<double>(images.size(0));
}

/// Writes the weights with the architecture ("casdm.small_vgg.widths", ".num_classes") and
/// `extra` metadata; load_small_vgg rebuilds the network from them.
inline void save_small_vgg(SmallVGG& net, const std::filesystem::path& path,
                           const std::map<std::string, std::string>& extra = {}) {
  io::TensorFile f;
  f.meta = extra;
  f.meta["small_vgg.widths"] = fmt::format("{}", fmt::join(net->options.widths(), ","));
  f.meta["small_vgg.num_classes"] = std::to_string(net->options.num_classes());
  for (const auto& kv : net->named_parameters()) f.tensors.emplace(kv.key(), kv.value());
  io::write_tensor_file(path, f);
}

/// The network saved at `path` (architecture from its metadata), frozen; `meta`, if given,
/// receives every metadata string of the file (image_size, test_accuracy, …).
inline SmallVGG load_small_vgg(const std::filesystem::path& path, std::map<std::string, std::string>* meta = nullptr) {
  if (!std::filesystem::exists(path))
    throw std::runtime_error("SmallVGG weights file not found: " + path.string() +
                             "; make it with `casdm-metric --data DIR --out " +
                             (path.has_parent_path() ? path.parent_path().string() : std::string(".")) +
                             "` (trains the classifier on the training data; see docs/metrics.md)");
  auto f = io::read_tensor_file(path);
  auto widths = f.meta.find("small_vgg.widths"), classes = f.meta.find("small_vgg.num_classes");
  if (widths == f.meta.end() || classes == f.meta.end())
    throw std::runtime_error(path.string() + " is not a SmallVGG file (no casdm.small_vgg.widths / num_classes)");
  SmallVGGOptions o;
  std::vector<int64_t> w;
  std::stringstream ss(widths->second);
  for (std::string part; std::getline(ss, part, ',');) w.push_back(std::stoll(part));
  o.widths(w).num_classes(std::stoll(classes->second));
  SmallVGG net(o);
  io::load_state_strict(*net, f.tensors, "SmallVGG weights file " + path.string());
  net->eval();
  for (auto& p : net->parameters()) p.requires_grad_(false);
  if (meta) *meta = f.meta;
  return net;
}

}  // namespace casdm::metric
