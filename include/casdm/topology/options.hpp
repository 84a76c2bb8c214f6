#pragma once
// Runtime sizes of a denoiser. The type (schedule, topology) fixes the structure; these fix the
// sizes. Every default is the paper's (An et al. 2024, "Experiment Settings"). They live with the
// topology because it is the topology that builds the networks from them (θ's `net`, and φ's
// `phi_net`, which only a cascaded topology reads); the process reads the sizes and T. core/ stays
// free of any network type. What a denoiser, its EMA copies and a model file hold is exactly this;
// how it is trained lives elsewhere: the objective's settings (loss/options.hpp,
// ObjectiveOptions) and the trainer's (train/trainer.hpp, TrainerOptions).
#include "casdm/net/unet_options.hpp"

#include <torch/arg.h>

#include <optional>

namespace casdm {

struct DenoiserOptions {
  /// Side of the square images and their channel count (CIFAR-10: 32, 3).
  TORCH_ARG(int64_t, image_size) = 32;
  TORCH_ARG(int64_t, channels) = 3;
  /// T, the number of diffusion steps of training (paper: 4000).
  TORCH_ARG(int64_t, diffusion_steps) = 4000;
  /// θ's architecture; its in/out channels and image size are set by the topology.
  TORCH_ARG(net::UNetOptions, net) = net::UNetOptions{};
  /// φ's architecture (cascaded topology); unset means the same as `net` (paper default).
  TORCH_ARG(std::optional<net::UNetOptions>, phi_net) = std::nullopt;
  /// Class-conditional model (beyond the paper): K > 0 classes, embedded into θ's and φ's time
  /// embedding (net::UNetOptions::num_classes); training then takes labels (dropped with
  /// TrainerOptions::label_dropout), sampling may take labels and a classifier-free guidance
  /// scale. 0: unconditional (the paper).
  TORCH_ARG(int64_t, num_classes) = 0;

 public:
  net::UNetOptions theta_net() const {
    return net::UNetOptions(net_).image_size(image_size_).num_classes(num_classes_);
  }
  net::UNetOptions phi_net_options() const {
    return net::UNetOptions(phi_net_.value_or(net_)).image_size(image_size_).num_classes(num_classes_);
  }
};

}  // namespace casdm
