#pragma once
// Metric-function losses (An et al. 2024, eq. 13): L_feat = F(𝒯(x0), 𝒯(x0′)), with 𝒯 a bilinear
// resize (align_corners = false) to Size×Size, [−1, 1] → [0, 1], and grayscale repeated to three
// channels. F is a frozen backbone's distance; gradient reaches x0′ only. The resize side is a
// type default (224, what ImageNet backbones expect) and a runtime option
// (ObjectiveOptions::feature_size), since at 224 the backbone dominates a CPU step.
//
// A backbone policy:
//   struct MyBackbone {
//     static constexpr const char* name = "mine";
//     using Module = ...;                              // a torch::nn module holder
//     static Module make(const ObjectiveOptions&);         // build and load weights; throw if missing
//     static at::Tensor distance(Module&, const at::Tensor& a, const at::Tensor& b);
//         // a, b: [N, 3, S, S] in [0, 1]; returns [N]
//   };
#include "casdm/loss/concepts.hpp"
#include "casdm/metric/transform.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <string>
#include <vector>

namespace casdm::loss {

template <class B>
concept FeatureBackbone = requires(const ObjectiveOptions& o, typename B::Module& m, const at::Tensor& a) {
  { B::name } -> std::convertible_to<const char*>;
  { B::make(o) } -> std::convertible_to<typename B::Module>;
  { B::distance(m, a, a) } -> std::same_as<at::Tensor>;
};

// 𝒯 and ImageNet normalisation live with the metric networks (metric/transform.hpp).
using metric::feature_transform;
using metric::imagenet_normalise;

/// Per image, the mean squared difference of each pair of feature maps (over all but the batch
/// dimension), averaged over the pairs: the ResNet, Inception and Swin feature distances.
inline at::Tensor mean_stage_mse(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  at::Tensor d = at::zeros({a.front().size(0)}, a.front().options());
  for (size_t l = 0; l < a.size(); ++l) d = d + (a[l] - b[l]).pow(2).flatten(1).mean(1);
  return d / static_cast<double>(a.size());
}

template <FeatureBackbone Backbone, class W = std::ratio<1, 10>, int64_t Size = 224>
struct Feature {
  using kind = Feature<Backbone, std::ratio<1>, 224>;
  using weight = W;
  using backbone = Backbone;
  static constexpr const char* name = Backbone::name;
  static constexpr bool needs_eps_head = false, needs_x0_head = true, needs_mix = false;
  static constexpr int64_t default_size = Size;
  /// "lpips(224)": the backbone and the side it sees by default.
  static std::string spec() { return fmt::format("{}({})", names::spec<Backbone>(), Size); }

  explicit Feature(const ObjectiveOptions& o)
      : size_(o.feature_size() > 0 ? o.feature_size() : Size), module_(Backbone::make(o)) {}

  /// Registers the backbone under the owner (so it follows `to(device)`) and freezes it.
  void attach(torch::nn::Module& owner) {
    owner.register_module(std::string("feature_") + name, module_);
    for (auto& p : module_->parameters()) p.requires_grad_(false);
  }

  at::Tensor operator()(const LossInputs& in) {
    module_->eval();  // a frozen metric: no dropout or batch statistics even while training
    auto target = feature_transform(in.x0, size_);
    auto pred = feature_transform(in.pred.x0, size_);
    return Backbone::distance(module_, target, pred).mean();
  }

  int64_t size() const { return size_; }

 private:
  int64_t size_;
  typename Backbone::Module module_;
};

}  // namespace casdm::loss
