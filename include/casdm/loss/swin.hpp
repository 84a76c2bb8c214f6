#pragma once
// The paper's Table 3 Swin feature loss: ImageNet normalisation, Swin-T's four stage outputs
// (features.1, .3, .5, .7: 96, 192, 384, 768 channels at 1/4 … 1/32 of the side), mean squared
// difference per stage (over space and channels), averaged over the four. Swin-T is torchvision's
// smallest Swin and the one the paper's compute budget suggests; ObjectiveOptions::feature_weights
// names the folder holding swin_t.pt (tools/export_weights.py).
#include "casdm/loss/feature.hpp"
#include "casdm/metric/swin.hpp"
#include "casdm/metric/weights.hpp"

#include <filesystem>

namespace casdm::loss {

struct SwinBackbone {
  static constexpr const char* name = "swin";
  using Module = metric::SwinT;
  static Module make(const ObjectiveOptions& o) {
    const auto dir = metric::weights_folder(o.feature_weights(), "Swin feature loss", "swin_t.pt");
    metric::SwinT m;
    metric::load_weights(*m, dir / "swin_t.pt", "Swin-T weights");
    m->eval();
    return m;
  }
  static at::Tensor distance(Module& m, const at::Tensor& a, const at::Tensor& b) {
    return mean_stage_mse(m->stages(imagenet_normalise(a)), m->stages(imagenet_normalise(b)));
  }
};

template <class W = std::ratio<1, 10>, int64_t Size = 224>
using SwinLoss = Feature<SwinBackbone, W, Size>;

}  // namespace casdm::loss
