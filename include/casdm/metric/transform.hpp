#pragma once
// What the metric networks are fed: the paper's image transform 𝒯 (An et al. 2024, eq. 13) and
// ImageNet normalisation. The feature losses (loss/feature.hpp), the SmallVGG classifier and the
// scorers share them.
#include <ATen/ATen.h>

namespace casdm::metric {

/// 𝒯: resize to size×size (bilinear, align_corners false), [−1, 1] → [0, 1], 1 → 3 channels.
inline at::Tensor feature_transform(const at::Tensor& x, int64_t size) {
  auto y = x;
  if (x.size(2) != size || x.size(3) != size)
    y = at::upsample_bilinear2d(x, {size, size}, /*align_corners=*/false);
  y = (y + 1) * 0.5;
  if (y.size(1) == 1) y = y.expand({y.size(0), 3, y.size(2), y.size(3)});
  return y;
}

/// ImageNet normalisation of [N, 3, H, W] images in [0, 1] (what torchvision's backbones expect).
inline at::Tensor imagenet_normalise(const at::Tensor& x) {
  const auto mean = at::tensor({0.485, 0.456, 0.406}, x.options()).view({1, 3, 1, 1});
  const auto std = at::tensor({0.229, 0.224, 0.225}, x.options()).view({1, 3, 1, 1});
  return (x - mean) / std;
}

}  // namespace casdm::metric
