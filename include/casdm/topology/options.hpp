#pragma once
// Runtime sizes of a model. The type (schedule, topology, losses, sampler) fixes the structure;
// these fix the sizes. Every default is the paper's (An et al. 2024, "Experiment Settings").
// They live with the topology because it is the topology that builds the networks from them (θ's
// `net`, and φ's `phi_net`, which only a cascaded topology reads); the process reads the sizes and
// T, a feature loss its side and weights file. core/ stays free of any network type.
#include "casdm/net/unet_options.hpp"

#include <torch/arg.h>

#include <optional>
#include <string>

namespace casdm {

struct ModelOptions {
  /// Side of the square images and their channel count (CIFAR-10: 32, 3).
  TORCH_ARG(int64_t, image_size) = 32;
  TORCH_ARG(int64_t, channels) = 3;
  /// T, the number of diffusion steps of training (paper: 4000).
  TORCH_ARG(int64_t, diffusion_steps) = 4000;
  /// θ's architecture; its in/out channels and image size are set by the topology.
  TORCH_ARG(net::UNetOptions, net) = net::UNetOptions{};
  /// φ's architecture (cascaded topology); unset means the same as `net` (paper default).
  TORCH_ARG(std::optional<net::UNetOptions>, phi_net) = std::nullopt;
  /// Side to which feature losses resize images; 0 means the loss's own default (224).
  TORCH_ARG(int64_t, feature_size) = 0;
  /// Weights file of a feature loss's backbone, where it needs one.
  TORCH_ARG(std::string, feature_weights) = "";


 public:
  net::UNetOptions theta_net() const { return net::UNetOptions(net_).image_size(image_size_); }
  net::UNetOptions phi_net_options() const { return net::UNetOptions(phi_net_.value_or(net_)).image_size(image_size_); }
};

}  // namespace casdm
