#pragma once
// The paper's Table 3 ResNet feature loss: ImageNet normalisation, ResNet-50's layer1 … layer4
// outputs, mean squared difference per stage (over channels and space), averaged over the four
// stages. ModelOptions::feature_weights names the folder holding resnet50.pt
// (tools/export_weights.py).
#include "casdm/loss/feature.hpp"
#include "casdm/metric/resnet.hpp"
#include "casdm/metric/weights.hpp"

#include <filesystem>

namespace casdm::loss {

struct ResNetBackbone {
  static constexpr const char* name = "resnet";
  using Module = metric::ResNet50;
  static Module make(const ModelOptions& o) {
    const auto dir = metric::weights_folder(o.feature_weights(), "ResNet feature loss", "resnet50.pt");
    metric::ResNet50 m;
    metric::load_weights(*m, dir / "resnet50.pt", "ResNet-50 weights");
    m->eval();
    return m;
  }
  static at::Tensor distance(Module& m, const at::Tensor& a, const at::Tensor& b) {
    const auto mean = at::tensor({0.485, 0.456, 0.406}, a.options()).view({1, 3, 1, 1});
    const auto std = at::tensor({0.229, 0.224, 0.225}, a.options()).view({1, 3, 1, 1});
    auto sa = m->stages((a - mean) / std), sb = m->stages((b - mean) / std);
    at::Tensor d = at::zeros({a.size(0)}, a.options());
    for (size_t l = 0; l < sa.size(); ++l) d = d + (sa[l] - sb[l]).pow(2).mean({1, 2, 3});
    return d / static_cast<double>(sa.size());
  }
};

template <class W = std::ratio<1, 10>, int64_t Size = 224>
using ResNetLoss = Feature<ResNetBackbone, W, Size>;

}  // namespace casdm::loss
