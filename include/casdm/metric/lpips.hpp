#pragma once
// LPIPS (Zhang et al. 2018) as piq computes it (`piq.LPIPS`, distance "mse"), the paper's metric
// function. For images a, b in [0, 1]:
//   x ← (x − ImageNet mean) / ImageNet std
//   f_l = VGG16 features at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
//   f_l ← f_l / (‖f_l‖₂ over channels + 1e-10)
//   d(a, b) = Σ_l Σ_c w_{l,c} · mean_{h,w} (f_l(a) − f_l(b))²
// with w the learned non-negative 1×1 weights of the LPIPS release. `replace_pooling` turns VGG's
// MaxPools into AvgPool2d(2, 2) (piq's option; the paper's setting, DESIGN §3).
//
//   casdm::metric::LPIPS lpips(casdm::metric::LPIPSOptions()
//       .vgg_weights("weights/vgg16_features.pt").linear_weights("weights/lpips_linear.pt"));
//   auto d = lpips(a, b);   // a, b: [N, 3, H, W] in [0, 1] → [N]
#include "casdm/metric/vgg.hpp"
#include "casdm/metric/weights.hpp"

#include <torch/arg.h>

#include <string>

namespace casdm::metric {

struct LPIPSOptions {
  /// VGG16 `features` weights (torchvision names, "features.<i>.weight"); empty leaves them random
  /// (tests only).
  TORCH_ARG(std::string, vgg_weights) = "";
  /// The five 1×1 weights, "lin0" … "lin4" of shapes [1, 64|128|256|512|512, 1, 1]; empty leaves
  /// them at 1/C (tests only).
  TORCH_ARG(std::string, linear_weights) = "";
  /// MaxPool → AvgPool2d(2, 2) in VGG16.
  TORCH_ARG(bool, replace_pooling) = true;
};

/// LPIPS's five 1×1 weights as buffers "lin0" … "lin4" (a module of its own, so its file loads
/// strictly by name and shape).
class LPIPSLinearImpl : public torch::nn::Cloneable<LPIPSLinearImpl> {
 public:
  LPIPSLinearImpl() { reset(); }
  void reset() override {
    w.clear();
    for (size_t l = 0; l < VGG16Impl::lpips_channels.size(); ++l) {
      const int64_t c = VGG16Impl::lpips_channels[l];
      w.push_back(register_buffer("lin" + std::to_string(l), at::full({1, c, 1, 1}, 1.0 / static_cast<double>(c))));
    }
  }
  std::vector<at::Tensor> w;
};
TORCH_MODULE(LPIPSLinear);

class LPIPSImpl : public torch::nn::Cloneable<LPIPSImpl> {
 public:
  /// Builds the network and loads the files named in the options (refused: missing, foreign or
  /// incomplete files, with the names at fault).
  explicit LPIPSImpl(LPIPSOptions o = {}) : options(std::move(o)) {
    reset();
    if (!options.vgg_weights().empty()) load_weights(*vgg, options.vgg_weights(), "VGG16 weights");
    if (!options.linear_weights().empty()) load_weights(*linear, options.linear_weights(), "LPIPS linear weights");
  }

  void reset() override {
    vgg = register_module("vgg", VGG16(VGG16Options().avg_pool(options.replace_pooling())));
    linear = register_module("linear", LPIPSLinear());
    mean_ = register_buffer("mean", at::tensor({0.485, 0.456, 0.406}, at::kFloat).view({1, 3, 1, 1}));
    std_ = register_buffer("std", at::tensor({0.229, 0.224, 0.225}, at::kFloat).view({1, 3, 1, 1}));
    for (auto& p : parameters()) p.requires_grad_(false);
    eval();
  }

  /// LPIPS distances of two batches [N, 3, H, W] in [0, 1]: [N].
  at::Tensor forward(const at::Tensor& a, const at::Tensor& b) {
    if (a.dim() != 4 || a.size(1) != 3 || a.sizes() != b.sizes())
      throw std::invalid_argument("LPIPS: expected two image batches [N, 3, H, W] of the same shape");
    const auto n = a.size(0);
    auto fa = vgg->features_at((a - mean_) / std_, VGG16Impl::lpips_taps);
    auto fb = vgg->features_at((b - mean_) / std_, VGG16Impl::lpips_taps);
    at::Tensor total = at::zeros({n}, a.options());
    for (size_t l = 0; l < fa.size(); ++l) {
      auto na = fa[l] / (fa[l].pow(2).sum(1, true).sqrt() + 1e-10);
      auto nb = fb[l] / (fb[l].pow(2).sum(1, true).sqrt() + 1e-10);
      total = total + ((na - nb).pow(2) * linear->w[l]).mean({2, 3}).sum(1);
    }
    return total;
  }

  LPIPSOptions options;
  VGG16 vgg{nullptr};
  LPIPSLinear linear{nullptr};

 private:
  at::Tensor mean_, std_;
};
TORCH_MODULE(LPIPS);

}  // namespace casdm::metric
