#pragma once
// The paper's Table 3 Inception feature loss: Inception v3 on 2x − 1 (what torchvision's
// pretrained model sees with transform_input=True), the outputs of pytorch-fid's four blocks
// (after maxpool1, after maxpool2, Mixed_6e, Mixed_7c: 64, 192, 768, 2048 channels), mean squared
// difference per block (over channels and space), averaged over the four. ObjectiveOptions::
// feature_weights names the folder holding inception_v3.pt (tools/export_weights.py). Inception
// needs sides ≥ 75, so feature_size must be 0 (the default 224) or ≥ 75.
#include <fmt/format.h>
#include "casdm/loss/feature.hpp"
#include "casdm/metric/inception.hpp"
#include "casdm/metric/weights.hpp"

#include <filesystem>
#include <stdexcept>
#include <string>

namespace casdm::loss {

struct InceptionBackbone {
  static constexpr const char* name = "inception";
  using Module = metric::InceptionV3;
  static Module make(const ObjectiveOptions& o) {
    if (o.feature_size() > 0 && o.feature_size() < metric::InceptionV3Impl::min_size)
      throw std::invalid_argument(fmt::format("the Inception feature loss needs feature_size ≥ 75 (Inception v3's smallest input), got {}", o.feature_size()));
    const auto dir = metric::weights_folder(o.feature_weights(), "Inception feature loss", "inception_v3.pt");
    metric::InceptionV3 m;
    metric::load_weights(*m, dir / "inception_v3.pt", "Inception v3 weights");
    m->eval();
    return m;
  }
  static at::Tensor distance(Module& m, const at::Tensor& a, const at::Tensor& b) {
    return mean_stage_mse(m->blocks(a * 2 - 1), m->blocks(b * 2 - 1));
  }
};

template <class W = std::ratio<1, 10>, int64_t Size = 224>
using InceptionLoss = Feature<InceptionBackbone, W, Size>;

}  // namespace casdm::loss
