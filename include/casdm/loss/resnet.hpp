#pragma once
// The paper's Table 3 ResNet feature loss: ImageNet normalisation, ResNet-50's layer1 … layer4
// outputs, mean squared difference per stage (over channels and space), averaged over the four
// stages. ObjectiveOptions::feature_weights names the folder holding resnet50.pt
// (tools/export_weights.py).
#include "casdm/loss/feature.hpp"
#include "casdm/metric/resnet.hpp"
#include "casdm/metric/weights.hpp"

#include <filesystem>

namespace casdm::loss {

struct ResNetBackbone {
  static constexpr const char* name = "resnet";
  using Module = metric::ResNet50;
  static Module make(const ObjectiveOptions& o) {
    const auto dir = metric::weights_folder(o.feature_weights(), "ResNet feature loss", "resnet50.pt");
    metric::ResNet50 m;
    metric::load_weights(*m, dir / "resnet50.pt", "ResNet-50 weights");
    m->eval();
    return m;
  }
  static at::Tensor distance(Module& m, const at::Tensor& a, const at::Tensor& b) {
    return mean_stage_mse(m->stages(imagenet_normalise(a)), m->stages(imagenet_normalise(b)));
  }
};

template <class W = std::ratio<1, 10>, int64_t Size = 224>
using ResNetLoss = Feature<ResNetBackbone, W, Size>;

}  // namespace casdm::loss
