#pragma once
// ResNet-50 as torchvision builds it (`torchvision.models.resnet50()`, v1.5: the stride sits on the
// 3×3 convolution), without the classifier, with torchvision's parameter and buffer names, so its
// ImageNet weights load as they are. The paper's Table 3 names "ResNet" without a depth; ResNet-50
// is torchvision's standard ImageNet feature network and the usual choice for feature losses.
//
//   casdm::metric::ResNet50 net;
//   auto stages = net->stages(x);   // outputs of layer1 … layer4: 256, 512, 1024, 2048 channels
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/pooling.h>
#include <torch/nn/pimpl.h>

#include <stdexcept>
#include <vector>

namespace casdm::metric {

namespace detail {
inline torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t pad = 0) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(false));
}
}  // namespace detail

/// torchvision's Bottleneck: 1×1 → 3×3 (stride) → 1×1 (×4 channels), batch norms, a projected
/// shortcut when the shape changes.
class BottleneckImpl : public torch::nn::Cloneable<BottleneckImpl> {
 public:
  BottleneckImpl(int64_t in, int64_t planes, int64_t stride) : in_(in), planes_(planes), stride_(stride) { reset(); }
  void reset() override {
    conv1 = register_module("conv1", detail::conv(in_, planes_, 1));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes_));
    conv2 = register_module("conv2", detail::conv(planes_, planes_, 3, stride_, 1));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes_));
    conv3 = register_module("conv3", detail::conv(planes_, planes_ * 4, 1));
    bn3 = register_module("bn3", torch::nn::BatchNorm2d(planes_ * 4));
    if (stride_ != 1 || in_ != planes_ * 4)
      downsample = register_module(
          "downsample", torch::nn::Sequential(detail::conv(in_, planes_ * 4, 1, stride_), torch::nn::BatchNorm2d(planes_ * 4)));
  }
  at::Tensor forward(const at::Tensor& x) {
    auto out = at::relu(bn1(conv1(x)));
    out = at::relu(bn2(conv2(out)));
    out = bn3(conv3(out));
    return at::relu(out + (downsample ? downsample->forward(x) : x));
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};

 private:
  int64_t in_, planes_, stride_;
};
TORCH_MODULE(Bottleneck);

class ResNet50Impl : public torch::nn::Cloneable<ResNet50Impl> {
 public:
  ResNet50Impl() { reset(); }
  void reset() override {
    conv1 = register_module("conv1", detail::conv(3, 64, 7, 2, 3));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(64));
    int64_t in = 64;
    const int64_t blocks[4] = {3, 4, 6, 3}, planes[4] = {64, 128, 256, 512};
    for (int l = 0; l < 4; ++l) {
      torch::nn::Sequential layer;
      for (int64_t b = 0; b < blocks[l]; ++b) {
        layer->push_back(Bottleneck(in, planes[l], b == 0 && l > 0 ? 2 : 1));
        in = planes[l] * 4;
      }
      layers[l] = register_module("layer" + std::to_string(l + 1), layer);
    }
  }
  /// The outputs of layer1 … layer4 for images [N, 3, H, W] (already normalised).
  std::vector<at::Tensor> stages(const at::Tensor& x) {
    if (x.dim() != 4 || x.size(1) != 3) throw std::invalid_argument("ResNet-50: expected images [N, 3, H, W]");
    auto h = at::relu(bn1(conv1(x)));
    h = at::max_pool2d(h, {3, 3}, {2, 2}, {1, 1});
    std::vector<at::Tensor> out;
    for (auto& layer : layers) out.push_back(h = layer->forward(h));
    return out;
  }
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Sequential layers[4];
};
TORCH_MODULE(ResNet50);

}  // namespace casdm::metric
