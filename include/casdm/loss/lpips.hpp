#pragma once
// The paper's metric-function loss: LPIPS (piq's, replace_pooling = true) in the feature-loss slot.
//   using CasDM_LPIPS = casdm::Model<..., casdm::loss::Set<EpsMSE<>, X0MSE<>, MuMix<>, LPIPSLoss<>>, ...>;
// ObjectiveOptions::feature_weights names the folder tools/export_weights.py wrote
// (vgg16_features.pt, lpips_linear.pt); ObjectiveOptions::feature_size the resize side (default 224).
#include "casdm/loss/feature.hpp"
#include "casdm/metric/lpips.hpp"

#include <filesystem>

namespace casdm::loss {

struct LPIPSBackbone {
  static constexpr const char* name = "lpips";
  using Module = metric::LPIPS;
  static Module make(const ObjectiveOptions& o) {
    const auto dir = metric::weights_folder(o.feature_weights(), "LPIPS loss", "vgg16_features.pt and lpips_linear.pt");
    return metric::LPIPS(metric::LPIPSOptions()
                             .vgg_weights((dir / "vgg16_features.pt").string())
                             .linear_weights((dir / "lpips_linear.pt").string())
                             .replace_pooling(true));
  }
  static at::Tensor distance(Module& m, const at::Tensor& a, const at::Tensor& b) { return m(a, b); }
};

/// L_feat = λ · LPIPS(𝒯(x0), 𝒯(x0′)), λ = 1/10 by default (the paper's).
template <class W = std::ratio<1, 10>, int64_t Size = 224>
using LPIPSLoss = Feature<LPIPSBackbone, W, Size>;

}  // namespace casdm::loss

namespace casdm::loss {
/// The LPIPS module itself, also under the loss namespace: `casdm::loss::LPIPS lpips(
/// casdm::loss::LPIPSOptions().vgg_weights(…).linear_weights(…)); auto d = lpips(a, b);`
using metric::LPIPS;
using metric::LPIPSOptions;
}  // namespace casdm::loss
