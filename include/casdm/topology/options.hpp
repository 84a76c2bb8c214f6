#pragma once
// Runtime sizes of a model. The type (schedule, topology, losses, sampler) fixes the structure;
// these fix the sizes. Every default is the paper's (An et al. 2024, "Experiment Settings").
// They live with the topology because it is the topology that builds the networks from them (θ's
// `net`, and φ's `phi_net`, which only a cascaded topology reads); the process reads the sizes and
// T, a feature loss its side and weights file. core/ stays free of any network type.
#include "casdm/net/unet_options.hpp"

#include <torch/arg.h>

#include <map>
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
  /// Class-conditional model (beyond the paper): K > 0 classes, embedded into θ's and φ's time
  /// embedding (net::UNetOptions::num_classes); training then takes labels, sampling may take
  /// labels and a classifier-free guidance scale. 0: unconditional (the paper).
  TORCH_ARG(int64_t, num_classes) = 0;
  /// Probability that training replaces an image's label by "no label" (classifier-free guidance
  /// learns the unconditional model from these; Ho & Salimans 2022 use 0.1–0.2).
  TORCH_ARG(double, label_dropout) = 0.1;
  /// λ of loss terms by name ("x0" → 0.5), replacing the type's ratio for this run: a sweep over λ
  /// needs no new type. A name the loss set lacks, or a negative or non-finite λ, is refused when the
  /// objective is built. Like feature_size and feature_weights an objective setting: a resumed run
  /// may change it (the change is reported), while the denoiser's options must match.
  using LossWeights = std::map<std::string, double>;
  TORCH_ARG(LossWeights, loss_weights) = {};

 public:
  net::UNetOptions theta_net() const {
    return net::UNetOptions(net_).image_size(image_size_).num_classes(num_classes_);
  }
  net::UNetOptions phi_net_options() const {
    return net::UNetOptions(phi_net_.value_or(net_)).image_size(image_size_).num_classes(num_classes_);
  }
};

}  // namespace casdm
