#pragma once
// A feature loss on a SmallVGG classifier trained on the training data itself (casdm-metric):
// the CPU-scale stand-in for LPIPS when no ImageNet weights are at hand. Distance: LPIPS's
// formula with unit weights on the classifier's stages (metric/small_vgg.hpp). The resize side
// defaults to 32, the side casdm-metric trains at. ObjectiveOptions::feature_weights names the folder
// holding small_vgg.pt.
#include "casdm/loss/feature.hpp"
#include "casdm/metric/small_vgg.hpp"
#include "casdm/metric/weights.hpp"

namespace casdm::loss {

struct SmallVGGBackbone {
  static constexpr const char* name = "small_vgg";
  using Module = metric::SmallVGG;
  static Module make(const ObjectiveOptions& o) {
    const auto dir = metric::weights_folder(o.feature_weights(), "SmallVGG feature loss", "small_vgg.pt",
                                            "make it with `casdm-metric --data DIR --out FOLDER` (see docs/metrics.md)");
    return metric::load_small_vgg(dir / "small_vgg.pt");
  }
  static at::Tensor distance(Module& m, const at::Tensor& a, const at::Tensor& b) {
    return metric::small_vgg_distance(m, a, b);
  }
};

template <class W = std::ratio<1, 10>, int64_t Size = 32>
using SmallVGGLoss = Feature<SmallVGGBackbone, W, Size>;

}  // namespace casdm::loss
