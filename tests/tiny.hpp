#pragma once
// Small sizes shared by the model tests: every preset's structure at a size the CPU trains in
// seconds.
#include "casdm/topology/options.hpp"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

namespace casdm::test {

inline DenoiserOptions tiny_options(int64_t image_size = 8, int64_t channels = 1, int64_t T = 100) {
  return DenoiserOptions()
      .image_size(image_size)
      .channels(channels)
      .diffusion_steps(T)
      .net(net::UNetOptions()
               .model_channels(16)
               .channel_mult({1, 2})
               .num_res_blocks(1)
               .attention_resolutions({image_size / 2})
               .num_heads(2)
               .norm_groups(8)
               .dropout(0.0));
}

/// Moves every parameter off its initial value (the U-Net zero-initialises its last layers, which
/// would hide gradients from earlier ones).
inline void perturb(torch::nn::Module& m, double scale = 0.05) {
  at::NoGradGuard g;
  for (auto& p : m.parameters())
    if (p.requires_grad()) p.add_(at::randn_like(p) * scale);
}

}  // namespace casdm::test
