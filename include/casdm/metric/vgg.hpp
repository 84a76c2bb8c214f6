#pragma once
// VGG16's convolutional part as torchvision builds it (`torchvision.models.vgg16().features`), with
// the same parameter names ("features.<i>.weight"), so torchvision's weights load as they are.
// Optionally every MaxPool becomes AvgPool2d(2, 2) (piq's LPIPS with replace_pooling=True).
//
//   casdm::metric::VGG16 vgg(casdm::metric::VGG16Options().avg_pool(true));
//   auto taps = vgg->features_at(x, casdm::metric::VGG16Impl::lpips_taps);   // relu1_2 … relu5_3
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/pooling.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <stdexcept>
#include <vector>

namespace casdm::metric {

struct VGG16Options {
  /// Replace every MaxPool2d(2, 2) by AvgPool2d(2, 2).
  TORCH_ARG(bool, avg_pool) = false;
};

class VGG16Impl : public torch::nn::Cloneable<VGG16Impl> {
 public:
  /// Indices in `features` of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (LPIPS's layers).
  static inline const std::vector<int64_t> lpips_taps{3, 8, 15, 22, 29};
  /// Output channels at those taps.
  static constexpr std::array<int64_t, 5> lpips_channels{64, 128, 256, 512, 512};

  explicit VGG16Impl(VGG16Options o = {}) : options(o) { reset(); }

  void reset() override {
    // torchvision's configuration "D": channels per conv, 0 for a pooling layer.
    static constexpr std::array<int64_t, 18> cfg{64, 64, 0, 128, 128, 0, 256, 256, 256, 0,
                                                 512, 512, 512, 0, 512, 512, 512, 0};
    features = torch::nn::Sequential();
    int64_t in = 3;
    for (int64_t c : cfg) {
      if (c == 0) {
        if (options.avg_pool())
          features->push_back(torch::nn::AvgPool2d(torch::nn::AvgPool2dOptions(2).stride(2)));
        else
          features->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
      } else {
        features->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, c, 3).padding(1)));
        features->push_back(torch::nn::ReLU());
        in = c;
      }
    }
    register_module("features", features);
  }

  /// The outputs of `features` after each index in `taps` (ascending), e.g. lpips_taps.
  std::vector<at::Tensor> features_at(at::Tensor x, const std::vector<int64_t>& taps) {
    if (x.dim() != 4 || x.size(1) != 3) throw std::invalid_argument("VGG16: expected images [N, 3, H, W]");
    std::vector<at::Tensor> out;
    size_t next = 0;
    int64_t i = 0;
    for (auto& layer : *features) {  // AnyModule, in order
      if (next == taps.size()) break;
      x = layer.forward(x);
      if (i++ == taps[next]) out.push_back(x), ++next;
    }
    if (next != taps.size()) throw std::invalid_argument("VGG16: a tap index is out of range or not ascending");
    return out;
  }

  at::Tensor forward(const at::Tensor& x) { return features->forward(x); }

  VGG16Options options;
  torch::nn::Sequential features{nullptr};
};
TORCH_MODULE(VGG16);

}  // namespace casdm::metric
